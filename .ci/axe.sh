#!/usr/bin/env bash
# Fetches axe-core (the accessibility engine the browser tests inject into every page) from the
# npm registry into target/axe-core/axe.min.js, once, checked against the registry's published
# sha512. Pinned: a new axe version may add rules, which is a change to review, not to inherit.
set -euo pipefail
cd "$(dirname "$0")/.."
version=4.14.1
integrity=sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ==
out=target/axe-core
[ -f "$out/axe.min.js" ] && [ "$(cat "$out/version" 2>/dev/null)" = "$version" ] && exit 0
mkdir -p "$out"
python3 - "$version" "$integrity" "$out" <<'PY'
import base64, hashlib, io, sys, tarfile, urllib.request
version, integrity, out = sys.argv[1:]
url = f"https://registry.npmjs.org/axe-core/-/axe-core-{version}.tgz"
data = urllib.request.urlopen(url, timeout=120).read()
digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
if digest != integrity:
    sys.exit(f"axe-core {version}: checksum {digest} is not the pinned {integrity}")
with tarfile.open(fileobj=io.BytesIO(data)) as tar:
    script = tar.extractfile("package/axe.min.js").read()
open(f"{out}/axe.min.js", "wb").write(script)
open(f"{out}/version", "w").write(version)
print(f"axe-core {version}: {len(script)} bytes")
PY
