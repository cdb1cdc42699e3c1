"""The prompt an external agent gets each iteration, from a user-editable template.

The template (`prompt_template.md` by default) uses `$name` placeholders (string.Template,
so the braces of Python code in a user's template need no escaping). Every value is computed
here from the ProposalContext; the history part is bounded (see history.py).
"""

from __future__ import annotations

from pathlib import Path
from string import Template

from autoresearch_tui.agents.base import AgentUnavailable, ProposalContext
from autoresearch_tui.agents.history import KEEP_LAST, MAX_KEEPS, digest, guidance
from autoresearch_tui.core.durations import format_duration

DEFAULT_TEMPLATE = Path(__file__).with_name("prompt_template.md")
NOTES_CHARS = 6000
FEEDBACK_CHARS = 2000
READONLY_CHARS = 40000

SYSTEM_PROMPT = (
    "You are an autonomous ML research agent improving a training script one experiment at a "
    "time. Follow the instructions exactly, answer only in the requested format, and never ask "
    "questions: nobody is there to answer them."
)

CLI_OUTPUT = (
    "Edit `$train_path` in place with your file-editing tools; do not print the whole file and "
    "change no other file. When you are done, print exactly one final line of this form:\n"
    "DESCRIPTION: <what you changed, one line under 80 characters, e.g. raise MATRIX_LR 0.04 -> 0.05>"
)

HTTP_OUTPUT = (
    "Answer with the change as one or more SEARCH/REPLACE blocks against the current "
    "`$train_path`, like this:\n\n"
    "<<<<<<< SEARCH\n"
    "<existing lines, copied exactly>\n"
    "=======\n"
    "<the new lines>\n"
    ">>>>>>> REPLACE\n\n"
    "Each SEARCH section must copy existing lines of the current script exactly, including "
    "indentation, and match only one place; keep it to the few lines around the change. For a "
    "large rewrite you may instead send the whole new file in a single fenced ```python code "
    "block. End your answer with exactly one line:\n"
    "DESCRIPTION: <what you changed, one line under 80 characters>"
)

PLATFORM_NOTES = {
    "cuda": "CUDA GPU: torch.compile is available (PyTorch >= 2.0); FlashAttention only if it is "
            "already installed; standard batch sizes apply; bf16 mixed precision works.",
    "mps": "Apple silicon (MPS): do not use torch.compile; use PyTorch SDPA "
           "(torch.nn.functional.scaled_dot_product_attention, with a manual mask for sliding "
           "windows) instead of FlashAttention; keep the device batch 2-4x smaller than CUDA "
           "configs; cast optimizer states to float32 if Metal errors appear. Re-running identical "
           "code moves the metric noticeably here, so small gains may be noise.",
    "cpu": "CPU only: do not use torch.compile or FlashAttention (use SDPA); use fp32; keep "
           "batches 4-8x smaller than GPU configs (gradient accumulation keeps the effective "
           "batch); runs are slow, so prefer changes that do not make a step more expensive.",
}

SCOPE_NOTES = {
    "architecture": "Only change the model architecture: depth, width, heads, attention pattern, "
                    "activations, MLP ratio, norms, embeddings, residual paths. Leave the optimizer, "
                    "learning rates, schedule, batch size and other training settings as they are.",
    "hyperparameters": "Only change training hyperparameters: batch size and gradient "
                       "accumulation, dropout, precision, tokens or steps, data ordering. Leave the "
                       "architecture and the optimizer (type, learning rates, schedule) as they are.",
    "optimizer": "Only change the optimizer and its schedule: optimizer type, learning rates, "
                 "betas, weight decay, warmup and warmdown, gradient clipping, per-parameter "
                 "learning-rate multipliers. Leave the architecture and the batch size as they are.",
}


def load_template(path: str | Path | None = None, project: str | Path = "") -> str:
    """The user's template (relative paths are under the project), else the default one."""
    if not path:
        return DEFAULT_TEMPLATE.read_text(encoding="utf-8")
    p = Path(path).expanduser()
    if not p.is_absolute() and project:
        p = Path(project) / p
    try:
        return p.read_text(encoding="utf-8")
    except OSError as exc:
        raise AgentUnavailable(f"cannot read the prompt template {p}: {exc.strerror or exc}") from None


def read_notes(project: str | Path, notes_file: str | None = "program.md") -> str:
    """The user's research notes file (program.md by default), '' when there is none."""
    if not notes_file:
        return ""
    p = Path(notes_file).expanduser()
    if not p.is_absolute():
        p = Path(project) / p
    try:
        return p.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def fence(text: str, lang: str = "python") -> str:
    """A fenced block whose fence is longer than any backtick run inside the text."""
    run = longest = 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    ticks = "`" * max(3, longest + 1)
    body = text if text.endswith("\n") else text + "\n"
    return f"{ticks}{lang}\n{body}{ticks}"


def clip(text: str, limit: int, keep_tail: bool = False) -> str:
    text = text.strip()
    if len(text) <= limit:
        return text
    if keep_tail:  # live instructions are appended at the end: keep the newest
        half = limit // 2
        return text[:half] + "\n[... middle left out ...]\n" + text[-half:]
    return text[:limit] + "\n[... truncated ...]"


def _section(title: str, body: str) -> str:
    return f"\n## {title}\n{body}\n" if body else ""


def values(ctx: ProposalContext, mode: str = "cli", keep_last: int = KEEP_LAST,
           max_keeps: int = MAX_KEEPS) -> dict[str, str]:
    """Every placeholder a template may use."""
    train = ctx.train_path or "train.py"
    readonly = ctx.readonly_path or "prepare.py"
    plan = []
    if ctx.vary:
        plan.append("Vary only: " + ", ".join(ctx.vary) + ".")
    if ctx.hold:
        plan.append("Hold fixed (never change): " + ", ".join(ctx.hold) + ".")
    hypothesis = ""
    if ctx.hypothesis:
        hypothesis = (ctx.hypothesis.strip() + "\nTest this hypothesis first; once it has been "
                      "tested, explore around it if it helped and move on if it did not.")
    readonly_section = ""
    if ctx.readonly_source:
        readonly_section = _section(f"`{readonly}` (read-only: for reference, never edit it)",
                                    fence(clip(ctx.readonly_source, READONLY_CHARS)))
    output = Template(CLI_OUTPUT if mode == "cli" else HTTP_OUTPUT).safe_substitute(train_path=train)
    budget = format_duration(ctx.time_budget_s) if ctx.time_budget_s else "the configured budget"
    return {
        "iteration": str(ctx.iteration),
        "train_path": train,
        "readonly_path": readonly,
        "metric": ctx.metric or "the metric",
        "direction_word": "lower" if ctx.direction == "min" else "higher",
        "scope": ctx.scope,
        "scope_section": _section("Scope", SCOPE_NOTES.get(ctx.scope, "")),
        "plan_section": _section("Experiment plan", " ".join(plan)),
        "hypothesis_section": _section("Opening hypothesis", hypothesis),
        "platform": ctx.platform,
        "platform_notes": PLATFORM_NOTES.get(ctx.platform, f"Device: {ctx.platform}."),
        "time_budget": budget,
        "guidance": guidance(ctx.history),
        "history": digest(ctx.history, ctx.best, ctx.metric, ctx.direction, keep_last, max_keeps)
        + running(ctx),
        "notes_section": _section("Research notes and instructions from the human (follow them)",
                                  clip(ctx.notes, NOTES_CHARS, keep_tail=True) if ctx.notes.strip() else ""),
        "feedback_section": _section("Your previous answer was rejected",
                                     (clip(ctx.feedback, FEEDBACK_CHARS) + "\nTake that into account in this answer.")
                                     if ctx.feedback.strip() else ""),
        "train_source": ctx.train_source,
        "train_block": fence(ctx.train_source),
        "readonly_source": ctx.readonly_source or "",
        "readonly_section": readonly_section,
        "output_format": output,
    }


def running(ctx: ProposalContext) -> str:
    """Parallel workers: what the others are running now, so this proposal differs."""
    if not ctx.in_flight:
        return ""
    lines = [f"- #{a.iteration}: {clip(a.description, 200)}" for a in ctx.in_flight[:16]]
    return ("\n\nRunning now on other workers (results not in yet; do not propose these again, "
            "test a different idea):\n" + "\n".join(lines))


def build_prompt(ctx: ProposalContext, mode: str = "cli", template: str | None = None,
                 keep_last: int = KEEP_LAST, max_keeps: int = MAX_KEEPS) -> str:
    """The full prompt; mode "cli" (agent edits the file) or "http" (answer with edit blocks)."""
    text = template if template is not None else load_template()
    if "$output_format" not in text and "${output_format}" not in text:
        text = text.rstrip() + "\n\n## Output\n$output_format\n"  # the backend's parsing depends on it
    return Template(text).safe_substitute(values(ctx, mode, keep_last, max_keeps))
