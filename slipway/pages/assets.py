"""Vendored browser assets, and the rewrite that makes Data Docs pages load them from Slipway.

Why: Great Expectations' Data Docs load Bootstrap, bootstrap-table, Font Awesome, jQuery and Vega
from public CDNs, and build the list of validation results with that JavaScript. In a cluster
without internet the pages come up empty and unstyled. The files the GX templates reference are
pinned here from the npm registry (``npm pack NAME@VERSION``; the two scripts GX loads with
subresource integrity hashes match those hashes byte for byte), kept under ``static/vendor/``
with their licences (see ``static/vendor/NOTICE.md``), and the artifacts plugin serves them at
``<base>/slipway/static/vendor/<package>@<version>/<path>``.

``offline_html`` rewrites a page's CDN URLs to those paths when the page is served; the stored
pages stay exactly as GX wrote them. GX's own logo, which GX loads from an S3 bucket, is pointed
at the copy every Data Docs site already carries in ``static/images/``, and links into that folder
get the right depth (GX's validation pages point one level too shallow, so their favicon 404s).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import PurePosixPath

VENDOR_DIR = "vendor"
IMMUTABLE_CACHE = "public, max-age=31536000, immutable"  # paths carry the version: never stale

CONTENT_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".woff2": "font/woff2",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


@dataclass(frozen=True)
class VendoredPackage:
    """One npm package: the files kept from it, keyed by the CDN URL each one replaces."""

    name: str
    version: str
    licence: str  # SPDX expression from the package's package.json
    integrity: str  # the npm tarball's ``dist.integrity``
    files: dict[str, str]  # CDN URL -> path inside the package
    extra: tuple[str, ...] = ()  # files loaded by the files above (fonts), and licence texts

    @property
    def folder(self) -> str:
        return f"{self.name}@{self.version}"


PACKAGES: tuple[VendoredPackage, ...] = (
    VendoredPackage(
        "jquery",
        "3.7.1",
        "MIT",
        "sha512-m4avr8yL8kmFN8psrbFFFmB/If14iN5o9nw/NgnnM+kybDJpRsAynV2BsfpTYrTRysYUdADVD7CkUUizgkpLfg==",
        {"https://code.jquery.com/jquery-3.7.1.min.js": "dist/jquery.min.js"},
        ("LICENSE.txt",),
    ),
    VendoredPackage(
        "bootstrap",
        "4.3.1",
        "MIT",
        "sha512-rXqOmH1VilAt2DyPzluTi2blhk17bO7ef+zLLPlWvG494pDxcM234pJ8wTc/6R40UWizAIIMgxjvxZg5kmsbag==",
        {
            "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "dist/css/bootstrap.min.css",
            "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "dist/js/bootstrap.min.js",
        },
        ("LICENSE",),
    ),
    VendoredPackage(
        "popper.js",
        "1.12.9",
        "MIT",
        "sha512-s0EEi9xiSCdqz9lV4IiVH5yIZnDX/U1t0tCjB+0jXx9jW8lrR7kOpVupiUg175ogqVoudpDXHF1p6dKATCHMeg==",
        {
            "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "dist/umd/popper.min.js"
        },
    ),
    VendoredPackage(
        "bootstrap-table",
        "1.19.1",
        "MIT",
        "sha512-WvV+l1AI/C+zThaKmfHmi/IuayVNB0qdFyEhFx1jyZhO0oLtNJNANkCR3rvJf6Dkh72dsLElxpE/bzK9seEQLA==",
        {
            "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "dist/bootstrap-table.min.css",
            "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "dist/bootstrap-table.min.js",
            "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": "dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
        },
        ("LICENSE",),
    ),
    VendoredPackage(
        "bootstrap-table",
        "1.19.0",
        "MIT",
        "sha512-L+USHm3X9FKocx/6yngGu12yF6r6s1Ntuc+hoIK2a2QQJjHw5kcySLiE2HY/9sEaSGAOfPbfQOtBH3uKkcpqEA==",
        {
            "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": "dist/extensions/filter-control/bootstrap-table-filter-control.css",
            "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css": "dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
        },
        ("LICENSE",),
    ),
    VendoredPackage(
        "@fortawesome/fontawesome-free",
        "6.6.0",
        "(CC-BY-4.0 AND OFL-1.1 AND MIT)",
        "sha512-60G28ke/sXdtS9KZCpZSHHkCbdsOGEhIUGlwq6yhY74UpTiToIh8np7A8yphhM4BWsvNFtIvLpi4co+h9Mr9Ow==",
        {"https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "css/all.min.css"},
        (
            # all.min.css lists woff2 first; browsers that load it never ask for the .ttf fallback
            "webfonts/fa-brands-400.woff2",
            "webfonts/fa-regular-400.woff2",
            "webfonts/fa-solid-900.woff2",
            "webfonts/fa-v4compatibility.woff2",
            "LICENSE.txt",
        ),
    ),
    VendoredPackage(
        "bootstrap-datepicker",
        "1.9.0",
        "Apache-2.0",
        "sha512-9rYYbaVOheGYxjOr/+bJCmRPihfy+LkLSg4fIFMT9Od8WwWB/MB50w0JO1eBgKUMbb7PFHQD5uAfI3ArAxZRXA==",
        {
            "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": "dist/css/bootstrap-datepicker.min.css",
            "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": "dist/js/bootstrap-datepicker.min.js",
        },
        ("LICENSE",),
    ),
    VendoredPackage(
        "@forevolve/bootstrap-dark",
        "1.1.0",
        "MIT",
        "sha512-A3ucpEpxPoTVO490lZZCfjPXxv832l7mm1IxX3bXyxvgwnPGXDLyh7dWrphXKO8YBAu3EswbBEu3VSW8NRMW3A==",
        # the package's minified build of the same stylesheet (153 kB instead of 883 kB)
        {
            "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": "dist/css/bootstrap-prefers-dark.min.css"
        },
        ("LICENSE",),
    ),
    # GX asks jsDelivr for the newest 5.x / 6.x; pinned to what that resolved to on the npm registry.
    VendoredPackage(
        "vega",
        "5.33.1",
        "BSD-3-Clause",
        "sha512-1fArfVDUqVbb5z8n+/nVQb+VNBzx8svY6CrsyTK4Ujm4yrd9I1auoKxBAPXLCavY1LcrbHUskQbGUP8gXOzyQw==",
        {"https://cdn.jsdelivr.net/npm/vega@5": "build/vega.min.js"},
    ),
    VendoredPackage(
        "vega-lite",
        "5.23.0",
        "BSD-3-Clause",
        "sha512-l4J6+AWE3DIjvovEoHl2LdtCUkfm4zs8Xxx7INwZEAv+XVb6kR6vIN1gt3t2gN2gs/y4DYTs/RPoTeYAuEg6mA==",
        {"https://cdn.jsdelivr.net/npm/vega-lite@5": "build/vega-lite.min.js"},
        ("LICENSE",),
    ),
    VendoredPackage(
        "vega-embed",
        "6.29.0",
        "BSD-3-Clause",
        "sha512-PmlshTLtLFLgWtF/b23T1OwX53AugJ9RZ3qPE2c01VFAbgt3/GSNI/etzA/GzdrkceXFma+FDHNXUppKuM0U6Q==",
        {"https://cdn.jsdelivr.net/npm/vega-embed@6": "build/vega-embed.min.js"},
        ("LICENSE",),
    ),
)

# GX's logo lives in a public S3 bucket; every Data Docs site has a copy in static/images/.
_GX_WEB_ASSETS = re.compile(
    r"https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/[^\"')\s]*"
)
_GX_LOGO = "static/images/logo-long.png"
# GX links the site's static/ folder one level too shallow from validation pages (favicon 404)
_SITE_STATIC = re.compile(r"""((?:src|href)=["'])(?:\.\./|\./)*static/""")


class AssetNotFound(LookupError):
    """No vendored file at that path."""


def cdn_map() -> dict[str, str]:
    """CDN URL -> vendored path (``<package>@<version>/<file>``), for every file GX references."""
    return {url: f"{p.folder}/{path}" for p in PACKAGES for url, path in p.files.items()}


def vendored_paths() -> set[str]:
    """Every path the static route serves (relative to ``static/vendor/``)."""
    return {f"{p.folder}/{path}" for p in PACKAGES for path in (*p.files.values(), *p.extra)}


def offline_html(page: str, static_url: str, site_root: str) -> str:
    """``page`` with every CDN asset loaded from ``static_url`` (the vendored tree's URL) and GX's
    logo from the site's own copy (``site_root``: the relative path from the page to the Data Docs
    site root, e.g. ``../../``). Navigation links (to greatexpectations.io) are left alone: the
    browser only follows them when clicked."""
    base = static_url.rstrip("/")
    for url, path in _longest_first(cdn_map()):
        page = page.replace(url, f"{base}/{path}")
    page = _SITE_STATIC.sub(lambda m: m.group(1) + site_root + "static/", page)
    return _GX_WEB_ASSETS.sub(site_root + _GX_LOGO, page)


def _longest_first(mapping: dict[str, str]) -> list[tuple[str, str]]:
    # a URL that is a prefix of another must not be replaced inside the longer one
    return sorted(mapping.items(), key=lambda item: -len(item[0]))


def site_root_from(page_key: str, index_key: str) -> str:
    """The relative path from the page at ``page_key`` to the folder of the site's ``index_key``."""
    root = PurePosixPath(index_key).parent
    depth = len(PurePosixPath(page_key).parent.relative_to(root).parts)
    return "../" * depth


@cache
def read_asset(path: str) -> tuple[bytes, str, str]:
    """(bytes, content type, strong ETag) of a vendored file; ``AssetNotFound`` for anything else."""
    if path not in vendored_paths():
        raise AssetNotFound(f"no vendored asset {path!r}")
    suffix = PurePosixPath(path).suffix
    data = resources.files("slipway.pages").joinpath("static", VENDOR_DIR, *path.split("/")).read_bytes()
    content_type = CONTENT_TYPES.get(suffix, "text/plain; charset=utf-8")
    return data, content_type, '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
