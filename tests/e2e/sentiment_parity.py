"""Every sentence of the VADER corpora through `cxm analyze sentiment` and through Python's
vaderSentiment 3.3.2: the four scores must agree at the package's published precision."""
import glob
import json
import os
import subprocess
import sys

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

bin_path, vader_dir = sys.argv[1], sys.argv[2]
texts = []
for path in sorted(glob.glob(os.path.join(vader_dir, "*_GroundTruth.txt"))):
    with open(path, encoding="utf-8", newline="") as f:
        for line in f.read().splitlines():
            parts = line.rstrip("\r").split("\t", 2)
            if len(parts) == 3:
                texts.append(parts[2].replace("\n", " "))

out = subprocess.run([bin_path, "analyze", "sentiment", "--all-languages"], input="\n".join(texts) + "\n",
                     capture_output=True, text=True, check=True).stdout.splitlines()
assert len(out) == len(texts), f"{len(out)} results for {len(texts)} texts"
py = SentimentIntensityAnalyzer()
bad = []
for text, line in zip(texts, out):
    ours = json.loads(line)
    ref = py.polarity_scores(text)
    if abs(ours["compound"] - ref["compound"]) > 1e-4 or any(abs(ours[k] - ref[k]) > 1e-3 for k in ("pos", "neu", "neg")):
        bad.append((text, ours, ref))
if bad:
    for text, ours, ref in bad[:5]:
        print("mismatch:", text[:80], {k: ours[k] for k in ("compound", "pos", "neu", "neg")}, ref)
    sys.exit(f"sentiment parity: {len(bad)} of {len(texts)} sentences differ from vaderSentiment 3.3.2")
print(f"sentiment parity: {len(texts)} sentences identical to vaderSentiment 3.3.2")
