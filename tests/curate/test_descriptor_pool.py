"""Parallel descriptors after the parent process used OpenCV's thread pool (a notebook, the DAG
run in-process): forked workers used to deadlock in cv2.setNumThreads."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import io, sys, time
    from pathlib import Path
    import numpy as np
    from PIL import Image
    from longtail.curate.descriptor import describe_image
    from longtail.curate.embeddings import compute_descriptors
    from longtail.storage import sha256_bytes

    root = Path(sys.argv[1])
    shas, paths = [], []
    for k in range(16):
        img = np.full((384, 640, 3), 40 + 10 * k, np.uint8)
        img[100:160, 200 + 10 * k:300 + 10 * k] = 255          # a saturated blob: connected components run
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=90)
        data = buf.getvalue()
        sha = sha256_bytes(data)
        (root / "frames").mkdir(parents=True, exist_ok=True)
        (root / "frames" / f"{sha}.jpg").write_bytes(data)
        shas.append(sha)
        paths.append(f"frames/{sha}.jpg")
    describe_image((root / paths[0]).read_bytes())              # OpenCV's pool starts in this process
    time.sleep(1.0)
    cache = compute_descriptors(root, shas, paths, batch_size=4, workers=2)
    assert cache.vectors(shas).shape == (16, 192)
    print("ok")
""")


def test_parallel_descriptors_after_opencv_ran_in_the_parent(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
