"""Matter primitives with nothing NXP-specific: TLV, attestation certificates, Certification Declarations,
SPAKE2+ verifiers, onboarding codes and offline attestation checks.

Each module reproduces the bytes of the Matter SDK tool it replaces (chip-cert, spake2p, the setup-payload
generator), so outputs can be compared against the SDK's published vectors; see
specs/matter-credentials.md for the facts and their sources.
"""
