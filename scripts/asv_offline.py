#!/usr/bin/env python3
"""Make asv's published site work offline: serve local copies of the exact JavaScript and CSS
versions its page pins, instead of the CDNs.

asv's ``index.html`` loads jQuery 3.3.1, flot 0.8.3 (and its time, selection and categories
plugins), flot-orderbars 1.0.0, stupidtable 1.0.1, blueimp-md5 2.19.0 and bootstrap 3.1.1 from
CDNs (with integrity hashes); without network the page shows only "Can not determine continental
origin of swallow".

    python scripts/asv_offline.py fetch              # at setup time (scripts/setup.sh): npm registry
    asv publish
    python scripts/asv_offline.py rewrite .asv/html  # after every `asv publish`

``fetch`` takes each package's tarball from the npm registry (``npm pack`` when npm is installed,
else the registry's tarball URL), checks it against the sha512 integrity pinned below and keeps
the files the page needs under ``.asv/vendor/<package>@<version>/`` (default; ``--vendor DIR``).
It is the only step that uses the network. ``rewrite HTML_DIR`` copies those files into
``HTML_DIR/vendor/`` and points the page's references at them (with the local files' sha384 as
their integrity); it downloads nothing, fails with one line when the files are absent (run
``fetch``), and when the page references a CDN file this script does not know (another asv
version): nothing is written then. stupidtable 1.0.1 is published neither on npm nor in Debian:
its successor 1.1.3 (same ``$.fn.stupidtable`` API) is served instead. The flot files are the
package's unminified sources of the same version.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VENDOR = ROOT / ".asv" / "vendor"

#: npm package -> (version, sha512 integrity of its tarball as the registry lists it)
PACKAGES = {
    "jquery": ("3.3.1", "sha512-Ubldcmxp5np52/ENotGxlLe6aGMvmF4R8S6tZjsP6Knsaxd/xp3Zrh50cG93lR6nPXyUFwzN3ZSOQI0wRJNdGg=="),
    "flot": ("0.8.3", "sha512-xg2otcTJDvS+ERK+my4wxG/ASq90QURXtoM4LhacCq0jQW2jbyjdttbRNqU2cPykrpMvJ6b2uSp6SAgYAzj9tQ=="),
    "flot-orderbars": ("1.0.0", "sha512-Jv51fvzevUjNXEeozpwEKfPjhiZhfiJddv0WHjduUTCmSF+7T5K7C9c9Y1wIVmUhDBv5fLMjgbwKecT0GIKPZA=="),
    "stupid-table-plugin": ("1.1.3", "sha512-2Vk7XouQPxUQPRe9w0Fu7ZZ8kHLK7rDoLMsCgtKxRNJ7f4dSOGvW9CkHsq5wD6QsaEnWoyLBYH3xOEsrK3yWBg=="),
    "blueimp-md5": ("2.19.0", "sha512-DRQrD6gJyy8FbiE4s+bDoXS9hiW3Vbx5uCdwvcCf3zLHL+Iv7LtGHLpr+GZV8rHG8tK766FGYBwRbu8pELTt+w=="),
    "bootstrap": ("3.1.1", "sha512-TAzqS8E/ISpVHP29gYhy+1NSV+FJwApDVQhDfgLYsIuUDJiqJzH2DfORN5tiu+Ie2iBLrzEG34t4Rf465cigqg=="),
}

#: the end of a CDN URL in asv's page -> (npm package, file inside the package)
REFERENCES = {
    "/jquery-3.3.1.min.js": ("jquery", "dist/jquery.min.js"),
    "/flot/0.8.3/jquery.flot.min.js": ("flot", "jquery.flot.js"),
    "/flot/0.8.3/jquery.flot.time.min.js": ("flot", "jquery.flot.time.js"),
    "/flot/0.8.3/jquery.flot.selection.min.js": ("flot", "jquery.flot.selection.js"),
    "/flot/0.8.3/jquery.flot.categories.min.js": ("flot", "jquery.flot.categories.js"),
    "/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js": ("flot-orderbars", "js/jquery.flot.orderBars.js"),
    "/stupidtable/1.0.1/stupidtable.min.js": ("stupid-table-plugin", "stupidtable.min.js"),
    "/blueimp-md5/2.19.0/js/md5.min.js": ("blueimp-md5", "js/md5.min.js"),
    "/bootstrap@3.1.1/dist/js/bootstrap.min.js": ("bootstrap", "dist/js/bootstrap.min.js"),
    "/bootstrap@3.1.1/dist/css/bootstrap.min.css": ("bootstrap", "dist/css/bootstrap.min.css"),
}
#: folders kept whole (bootstrap's CSS loads its glyph fonts from ../fonts/)
FOLDERS = {"bootstrap": ["dist/fonts/"]}


class OfflineError(Exception):
    """Why the site cannot be made offline (one line)."""


def _tarball(name: str, version: str) -> bytes:
    """The package's tarball from the npm registry."""
    if shutil.which("npm"):
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["npm", "pack", f"{name}@{version}", "--silent", "--pack-destination", tmp],
                           check=True, capture_output=True, timeout=300)
            return next(Path(tmp).glob("*.tgz")).read_bytes()
    url = f"https://registry.npmjs.org/{name}/-/{name.split('/')[-1]}-{version}.tgz"
    with urllib.request.urlopen(url, timeout=120) as resp:  # noqa: S310 (a fixed https URL)
        return resp.read()


def package_dir(vendor: Path, name: str) -> Path:
    """Where the files of package `name` (at its pinned version) are kept."""
    return vendor / f"{name}@{PACKAGES[name][0]}"


def fetch(vendor: Path = DEFAULT_VENDOR) -> list[Path]:
    """Download the pinned packages (checked against their integrity) and keep the files the
    page needs under `vendor`; packages already there are not downloaded again."""
    wanted: dict = {}
    for name, path in REFERENCES.values():
        wanted.setdefault(name, []).append(path)
    kept = []
    for name, paths in wanted.items():
        version, integrity = PACKAGES[name]
        dest = package_dir(vendor, name)
        if all((dest / p).is_file() for p in paths):
            continue
        data = _tarball(name, version)
        digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
        if digest != integrity:
            raise OfflineError(f"{name}@{version}: tarball integrity {digest} is not the pinned {integrity}")
        tmp = Path(tempfile.mkdtemp(dir=vendor.parent if vendor.parent.is_dir() else None))
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                for member in tar.getmembers():
                    inner = member.name.split("/", 1)[1] if "/" in member.name else ""
                    if member.isfile() and (inner in paths or any(inner.startswith(f) for f in FOLDERS.get(name, []))):
                        target = tmp / inner
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(tar.extractfile(member).read())
                        kept.append(dest / inner)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.exists():
                shutil.rmtree(dest)
            os.replace(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return kept


def _sri(path: Path) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


_TAG = re.compile(r"<(script|link)\b[^>]*?(?:src|href)=\"(https?://[^\"]+)\"[^>]*>", re.S)


def rewrite(html_dir: Path, vendor: Path = DEFAULT_VENDOR) -> list[str]:
    """Copy the vendored files into ``html_dir/vendor/`` and point ``html_dir/index.html`` at
    them; return the CDN URLs replaced. OfflineError (nothing written) when the files are
    absent or the page references a CDN file not in REFERENCES."""
    index = html_dir / "index.html"
    if not index.is_file():
        raise OfflineError(f"{index}: no such file (run `asv publish` first)")
    text = index.read_text()
    replaced, plan = [], []
    for match in _TAG.finditer(text):
        tag, url = match.group(0), match.group(2)
        if tag.startswith("<link") and "stylesheet" not in tag:
            continue
        known = next((v for k, v in REFERENCES.items() if url.endswith(k)), None)
        if known is None:
            raise OfflineError(f"{index}: references {url}, which {Path(__file__).name} does not know "
                               "(another asv version?): nothing rewritten")
        name, inner = known
        source = package_dir(vendor, name) / inner
        if not source.is_file():
            raise OfflineError(f"{source}: missing; run `python scripts/asv_offline.py fetch` "
                               "(scripts/setup.sh does) first")
        plan.append((tag, url, name, inner, source))
    out = html_dir / "vendor"
    for name in {p[2] for p in plan}:
        src = package_dir(vendor, name)
        shutil.copytree(src, out / src.name, dirs_exist_ok=True)
    for tag, url, name, inner, source in plan:
        local = f"vendor/{package_dir(vendor, name).name}/{inner}"
        new = tag.replace(url, local)
        new = re.sub(r'\s(?:crossorigin|referrerpolicy)="[^"]*"', "", new)
        new = re.sub(r'integrity="[^"]*"', f'integrity="{_sri(source)}"', new)
        text = text.replace(tag, new)
        replaced.append(url)
    tmp = index.with_suffix(".html.tmp")
    tmp.write_text(text)
    os.replace(tmp, index)
    return replaced


def main(argv: list[str] | None = None) -> int:
    """`fetch [--vendor DIR]` or `rewrite HTML_DIR [--vendor DIR]`."""
    parser = argparse.ArgumentParser(prog="asv_offline.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fetch", help="download the pinned files from the npm registry (setup time)")
    f.add_argument("--vendor", type=Path, default=DEFAULT_VENDOR)
    r = sub.add_parser("rewrite", help="point a published asv site at the local files")
    r.add_argument("html_dir", type=Path)
    r.add_argument("--vendor", type=Path, default=DEFAULT_VENDOR)
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            args.vendor.mkdir(parents=True, exist_ok=True)
            kept = fetch(args.vendor)
            print(f"asv_offline: {len(kept)} file(s) fetched into {args.vendor}" if kept
                  else f"asv_offline: {args.vendor} already holds every file")
        else:
            urls = rewrite(args.html_dir, args.vendor)
            print(f"asv_offline: {args.html_dir / 'index.html'}: {len(urls)} reference(s) now local")
    except OfflineError as exc:
        print(f"asv_offline: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
