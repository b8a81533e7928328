"""htr: an ESPnet-style recipe toolkit for handwritten text recognition."""
from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
requirements = [
    line.split("#")[0].strip()
    for line in (here / "requirements.txt").read_text().splitlines()
    if line.split("#")[0].strip()
]
# Every module in htr/bin with a main() is also a console script: htr/bin/image_to_ark.py -> htr-image-to-ark
tools = sorted(p.stem for p in (here / "htr" / "bin").glob("*.py") if not p.stem.startswith("_"))
EXPORT = ["onnx>=1.17", "onnxruntime>=1.20", "onnxscript>=0.3"]
console_scripts = ["htr=htr.cli:main"] + [f"htr-{t.replace('_', '-')}=htr.bin.{t}:main" for t in tools]

setup(
    name="htr",
    version=(here / "htr" / "VERSION").read_text().strip(),
    description="ESPnet-style recipes and models for handwritten text recognition",
    long_description=(here / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["htr", "htr.*"]),
    package_data={"htr": ["VERSION", "serve/static/*", "models/*.pt", "models/*.zip", "models/*.md"]},
    python_requires=">=3.9",
    install_requires=requirements,
    # pyarrow reads Hugging Face parquet datasets (no lighter reader exists); huggingface_hub
    # fetches hub models (a local mirror works without it). selenium drives headless Chromium in the
    # browser test of `htr serve`'s page. onnx + onnxscript write ONNX files (torch.onnx.export
    # needs both) and onnxruntime runs them, to check every export against the eager model. lxml
    # validates written PAGE XML against its XSD (htr itself reads and writes with the stdlib).
    extras_require={"test": ["pytest>=7", "pyarrow", "selenium>=4.11", "lxml", *EXPORT], "export": EXPORT,
                    "parquet": ["pyarrow"], "hub": ["huggingface_hub"], "kenlm": ["kenlm"]},
    entry_points={"console_scripts": console_scripts},
)
