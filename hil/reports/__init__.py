"""Reports of the harness: allure results (redacted), failure categories, step records and the qualification
summary, and rendering with the allure command line.

The API fixtures and suites use (everything is redacted before it is shown, attached or recorded):

    register_secret(aes_key)                  # bytes or hex; also register_private_key(dac_key)
    with step("flashing", board) as s:        # allure step + category on failure + summary record
        s.facts[FACT_FACTORY_DATA_SHA256] = sha
    record_environment(board, firmware="...", vid=0xFFF1, pid=0x8005)
    attach_json(inspector_output, "factory data"); attach_certificate(dac, "DAC"); attach_file(log_path)
"""

from __future__ import annotations

from hil.reports.allure import attach_bytes, attach_certificate, attach_file, attach_json, attach_text
from hil.reports.categories import CATEGORIES, INFRASTRUCTURE, STEPS, category_of, is_infrastructure
from hil.reports.records import FACT_DAC_SERIAL, FACT_FACTORY_DATA_SHA256, record_environment
from hil.reports.redact import redact, register_private_key, register_secret
from hil.reports.steps import StepResult, step

__all__ = [
    "CATEGORIES",
    "FACT_DAC_SERIAL",
    "FACT_FACTORY_DATA_SHA256",
    "INFRASTRUCTURE",
    "STEPS",
    "StepResult",
    "attach_bytes",
    "attach_certificate",
    "attach_file",
    "attach_json",
    "attach_text",
    "category_of",
    "is_infrastructure",
    "record_environment",
    "redact",
    "register_private_key",
    "register_secret",
    "step",
]
