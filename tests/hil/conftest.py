"""This repository's HIL suites: the session's CD is signed with the plugin's default, the Matter test CD key.

Nothing here: --hil-cd-key/--hil-cd-cert or $HIL_CD_KEY/$HIL_CD_CERT override it as for any user.
"""
