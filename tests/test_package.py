"""The public surface and the core's dependencies."""

import subprocess
import sys

import threadloom
from threadloom import models


def test_public_api_is_pinned() -> None:
    # Sorted, so a new name shows in review where it belongs; and pinned, so none comes or goes unseen.
    assert threadloom.__all__ == sorted(threadloom.__all__)
    assert threadloom.__all__ == [
        "Agent",
        "AlreadyDelivered",
        "Context",
        "ContextWindowExceeded",
        "DoneForNow",
        "Event",
        "EventLog",
        "IdempotencyKeyReused",
        "Intent",
        "InvalidTransition",
        "LeaseLost",
        "Message",
        "ModelError",
        "ModelHTTPError",
        "ModelTimeout",
        "NotStorable",
        "OverTokenBudget",
        "ParseError",
        "ProviderError",
        "RateLimited",
        "Refused",
        "RequestHumanInput",
        "RequestMoreInformation",
        "RunLimits",
        "RunnableCall",
        "Runtime",
        "ScriptExhausted",
        "Status",
        "StoreError",
        "Thread",
        "ThreadDecodeError",
        "ThreadNotFound",
        "ThreadState",
        "ThreadloomError",
        "Tool",
        "ToolRetry",
        "UserError",
        "VersionConflict",
        "WaitUntil",
        "Worker",
        "__version__",
        "parse",
        "tool",
    ]
    assert isinstance(threadloom.__version__, str) and threadloom.__version__
    for name in threadloom.__all__:
        assert getattr(threadloom, name) is not None
    assert sorted(models.__all__) == [
        "Completion",
        "Cost",
        "FallbackModel",
        "Model",
        "ModelRequest",
        "ModelSettings",
        "PRICES",
        "PRICES_AS_OF",
        "Price",
        "ScriptedModel",
        "ScriptedOutput",
        "Strategy",
        "ToolDefinition",
        "Usage",
        "cost",
        "infer_model",
        "load_prices",
        "price_for",
    ]


def test_the_core_imports_only_pydantic_and_json_repair() -> None:
    code = (
        "import sys, threadloom, threadloom.models, threadloom.context, threadloom.parsing;"
        "top = {m.split('.')[0] for m in sys.modules};"
        "print(sorted(top - set(sys.stdlib_module_names)))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    third_party = set(eval(out)) - {"__main__"}  # a printed list of names
    third_party = {m for m in third_party if not m.startswith("_sysconfigdata")}
    allowed = {
        "threadloom",
        "pydantic",
        "pydantic_core",
        "json_repair",
        "typing_extensions",
        "typing_inspection",
        "annotated_types",
    }
    assert third_party <= allowed, third_party - allowed
