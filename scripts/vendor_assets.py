"""Re-fetch the vendored browser assets from the npm registry and check (or rewrite) them.

    python -m scripts.vendor_assets           # check: every vendored file equals the npm tarball's
    python -m scripts.vendor_assets --write   # copy the files from the tarballs (after a bump)

Each package in ``slipway.pages.assets.PACKAGES`` is fetched with ``npm pack NAME@VERSION``; its
tarball must match the recorded ``integrity`` (sha512), so a vendored file is provably the
registry's. Needs ``npm`` and network access; the tests do not (they read the committed files).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from slipway.pages.assets import PACKAGES, VENDOR_DIR

VENDOR = Path(__file__).resolve().parents[1] / "slipway" / "pages" / "static" / VENDOR_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="copy the files instead of checking them")
    args = parser.parse_args(argv)
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        for package in PACKAGES:
            spec = f"{package.name}@{package.version}"
            packed = subprocess.run(
                ["npm", "pack", spec, "--json"], cwd=tmp, check=True, capture_output=True, text=True
            )
            info = json.loads(packed.stdout)[0]
            if info["integrity"] != package.integrity:
                problems.append(
                    f"{spec}: tarball integrity {info['integrity']} != recorded {package.integrity}"
                )
                continue
            with tarfile.open(Path(tmp) / info["filename"]) as tar:
                for rel in (*package.files.values(), *package.extra):
                    member = tar.extractfile(f"package/{rel}")
                    data = member.read() if member else b""
                    target = VENDOR / package.folder / rel
                    if args.write:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(data)
                    elif not target.is_file() or target.read_bytes() != data:
                        problems.append(f"{spec}: {rel} differs from the npm tarball")
            print(f"{spec}: {'written' if args.write else 'checked'} ({package.licence})")
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
