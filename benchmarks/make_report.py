"""Refresh the generated tables of BENCHMARKS.md from benchmarks/results/*.md.

BENCHMARKS.md holds blocks ``<!-- results:NAME -->`` ... ``<!-- /results:NAME -->``;
each is replaced by ``benchmarks/results/NAME.md`` (image links made relative to
the repository root). The prose around the blocks is left alone.

    python benchmarks/make_report.py
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BLOCK = re.compile(r"(<!-- results:([\w-]+) -->\n)(.*?)(<!-- /results:\2 -->)", re.DOTALL)


def refresh(text):
    def replace(match):
        path = RESULTS / f"{match.group(2)}.md"
        if not path.exists():
            return match.group(0)
        body = re.sub(r"\]\(([\w.-]+\.png)\)", r"](benchmarks/results/\1)", path.read_text())
        return match.group(1) + body.rstrip() + "\n" + match.group(4)

    return BLOCK.sub(replace, text)


def main():
    target = ROOT / "BENCHMARKS.md"
    target.write_text(refresh(target.read_text()))
    print(f"refreshed {target}")


if __name__ == "__main__":
    main()
