"""Human-readable text for a `TestReport` (pure; the CLI prints it)."""

from __future__ import annotations

from qackage.validate.report import StepStatus, TestReport

_MARK = {
    StepStatus.PASSED: "ok  ",
    StepStatus.FAILED: "FAIL",
    StepStatus.SKIPPED: "skip",
    StepStatus.NOT_RUN: "----",
}
TAIL_LINES = 12


def _tail(text: str, lines: int = TAIL_LINES) -> list[str]:
    kept = text.rstrip("\n").splitlines()[-lines:]
    return [f"        | {line}" for line in kept]


def render_report(report: TestReport) -> str:
    verdict = "PASSED" if report.passed else "FAILED"
    env = report.environment
    lines = [
        f"{report.package}: {verdict} ({len(report.steps)} steps, {report.duration:.2f} s, "
        f"{len(env.installed)} packages in a {env.mode} root"
        + (f", {report.attempts} attempts" if report.attempts > 1 else "")
        + ")"
    ]
    for warning in env.warnings:
        lines.append(f"  warning: {warning}")
    for step in report.steps:
        # A pipeline's inner step reads best under the pipeline's name.
        title = f"{step.uses}: {step.title}" if step.uses and step.uses != step.title else step.title
        timing = f"{step.duration:.2f} s" if step.status in (StepStatus.PASSED, StepStatus.FAILED) else ""
        lines.append(f"  {_MARK[step.status]} {step.number:>2} {title}  {timing}".rstrip())
        if step.status is StepStatus.FAILED:
            lines.append(f"       reason: {step.reason}")
            if step.stderr_tail.strip():
                lines.append("       stderr:")
                lines += _tail(step.stderr_tail)
            if step.stdout_tail.strip():
                lines.append("       stdout:")
                lines += _tail(step.stdout_tail)
        elif step.status is StepStatus.SKIPPED:
            lines.append(f"       {step.reason}")
    if report.flaky_steps:
        lines.append("  flaky (passed in some attempts, failed in others): " + ", ".join(report.flaky_steps))
    return "\n".join(lines) + "\n"
