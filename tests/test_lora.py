"""LoRA training shared by KD and LD: real short runs on the embedded model."""

from __future__ import annotations

import json
import shutil

import pytest

from ld_agents.lora import (
    ADAPTER_DIR,
    RUN_FILE,
    LoraTrainConfig,
    RunMismatch,
    adapter_sha256,
    check_adapter,
    check_adapter_pin,
    check_examples,
    model_fingerprint,
    train_lora,
)
from ld_envs.errors import InvalidArgument

EXAMPLES = [
    {
        "prompt": f"Pursuer A is at ({i}, {i + 1}). The evader is at (10, 10). Answer:",
        "answer": f" A: ({i + 1}, {i + 1})",
    }
    for i in range(8)
]


@pytest.fixture(scope="module")
def model_dir():
    from ld_agents.llm.embedded import embedded_model_dir

    return embedded_model_dir()


@pytest.fixture(scope="module")
def trained(model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("lora") / "run"
    config = LoraTrainConfig(
        output_dir=str(out),
        max_steps=4,
        batch_size=4,
        save_steps=2,
        logging_steps=1,
        learning_rate=5e-4,
        progress=False,
    )
    return out, config, train_lora(model_dir, EXAMPLES, config)


@pytest.mark.llm
def test_short_run_lowers_the_loss(trained):
    """Four steps on repeated data lower the answer loss."""
    _, _, record = trained
    curve = [p["loss"] for p in record["loss_curve"]]
    assert len(curve) == 4 and curve[-1] < curve[0]
    assert record["status"] == "done" and record["global_step"] == 4


@pytest.mark.llm
def test_training_changes_the_adapter_weights(trained):
    """LoRA B matrices start at zero; after training they are not."""
    from safetensors.torch import load_file

    out, _, _ = trained
    weights = load_file(str(out / ADAPTER_DIR / "adapter_model.safetensors"))
    b = [t for name, t in weights.items() if "lora_B" in name]
    assert b and any(float(t.abs().max()) > 0 for t in b)


@pytest.mark.llm
def test_rerun_of_a_finished_run_trains_nothing(trained, model_dir):
    """The same run again, once done, returns its record and leaves its adapter as it was
    (no resume from the last checkpoint, which can take one more step)."""
    out, config, first = trained
    before = adapter_sha256(out / ADAPTER_DIR)
    again = train_lora(model_dir, EXAMPLES, config)
    assert again == json.loads(json.dumps(first))  # the record as written, not a new run
    assert adapter_sha256(out / ADAPTER_DIR) == before


@pytest.mark.llm
def test_interrupted_run_resumes_from_its_checkpoint(model_dir, tmp_path):
    """A run whose record is not done resumes from its newest checkpoint and ends at the
    planned step count."""
    out = tmp_path / "run"
    config = LoraTrainConfig(
        output_dir=str(out), max_steps=2, batch_size=4, save_steps=1, logging_steps=1,
        progress=False,
    )  # fmt: skip
    train_lora(model_dir, EXAMPLES, config)
    record = json.loads((out / RUN_FILE).read_text())
    (out / RUN_FILE).write_text(json.dumps({**record, "status": "running"}))
    again = train_lora(model_dir, EXAMPLES, config)
    assert again["resumed"] and again["global_step"] == 2


@pytest.mark.llm
def test_folder_of_another_run_is_refused(trained, model_dir):
    """Other data in the same output folder is refused, naming what differs."""
    _, config, _ = trained
    with pytest.raises(RunMismatch, match="data"):
        train_lora(model_dir, EXAMPLES[:4], config)


@pytest.mark.llm
def test_adapter_for_another_base_model_is_refused(trained, model_dir, tmp_path):
    """An adapter whose record names another base model fails check_adapter."""
    out, _, _ = trained
    check_adapter(out / ADAPTER_DIR, model_dir)  # its own base: fine
    copy = tmp_path / "adapter"
    shutil.copytree(out / ADAPTER_DIR, copy)
    record = json.loads((copy / RUN_FILE).read_text())
    record["base_model"] = "0000000000000000"
    (copy / RUN_FILE).write_text(json.dumps(record))
    with pytest.raises(RunMismatch, match="trained on base model 0000000000000000"):
        check_adapter(copy, model_dir)


def test_adapter_pin_follows_the_weights(tmp_path):
    """The content fingerprint changes with one weight byte; a pin of the old content is
    refused with both fingerprints named; a folder that is no adapter is named."""
    from ld_agents.ld.policy import default_adapter

    copy = tmp_path / "adapter"
    shutil.copytree(default_adapter("twentyone"), copy)
    pin = adapter_sha256(copy)
    check_adapter_pin(copy, pin)
    check_adapter_pin(copy, None)
    weights = copy / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    changed = adapter_sha256(copy)
    assert changed != pin
    with pytest.raises(RunMismatch, match=f"fingerprint {changed}, but {pin} was asked for"):
        check_adapter_pin(copy, pin)
    with pytest.raises(InvalidArgument, match=r"no adapter_config\.json"):
        adapter_sha256(tmp_path)


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([], "empty"),
        ([{"prompt": "x"}], "row 0 must be a mapping with a 'prompt' string and either"),
        ([{"prompt": "x", "answer": "y"}, "text"], "row 1"),
        ([{"prompt": "x", "answer": "  "}], "non-empty"),
    ],
)
def test_empty_or_malformed_data_is_refused(rows, match):
    """Bad training data fails with the row and what is expected."""
    with pytest.raises(InvalidArgument, match=match):
        check_examples(rows)


@pytest.mark.parametrize(
    ("field", "value"), [("r", 0), ("dropout", 1.5), ("dtype", "float16"), ("max_steps", 0)]
)
def test_config_validation_names_the_field(field, value):
    """LoraTrainConfig refuses out-of-range fields by name."""
    with pytest.raises(InvalidArgument, match=f"LoraTrainConfig.{field}"):
        LoraTrainConfig(output_dir="x", **{field: value})


def test_base_model_fingerprint_ignores_the_writer(tmp_path):
    """Another transformers release writing the same model keeps the fingerprint; a
    changed config field or weight file size changes it; a folder with no config is named."""
    model = tmp_path / "model"
    model.mkdir()
    config = {"hidden_size": 640, "model_type": "gemma3_text", "transformers_version": "5.24.0"}
    (model / "config.json").write_text(json.dumps(config))
    (model / "model.safetensors").write_bytes(b"0" * 64)
    first = model_fingerprint(model)
    (model / "config.json").write_text(json.dumps({**config, "transformers_version": "5.25.0"}))
    assert model_fingerprint(model) == first
    (model / "config.json").write_text(json.dumps({**config, "hidden_size": 641}))
    assert model_fingerprint(model) != first
    (model / "config.json").write_text(json.dumps(config))
    (model / "model.safetensors").write_bytes(b"0" * 65)
    assert model_fingerprint(model) != first
    with pytest.raises(InvalidArgument, match=r"no config\.json"):
        model_fingerprint(tmp_path)


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([{"prompt": "x", "branches": []}], "non-empty list of \\[cue, answer\\]"),
        ([{"prompt": "x", "branches": [["cue", " "]]}], "non-empty answers"),
        ([{"prompt": "x", "branches": [["cue"]]}], "pairs"),
        ([{"prompt": "x", "answer": "y", "branches": [["c", "y"]]}], "either an 'answer'"),
    ],
)
def test_malformed_branches_are_refused(rows, match):
    with pytest.raises(InvalidArgument, match=match):
        check_examples(rows)


@pytest.mark.llm
def test_packed_branches_score_as_their_own_sequences(model_dir):
    """A packed row (one prompt, several [cue, answer] branches) under the collator's 4D
    masks gives each answer token the log-probability it has in prompt + cue + answer
    alone (float32, the real model), and its loss covers the answers only."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ld_agents.lora.data import LeftPadCollator, tokenize_examples

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    prompt = "Rules: pick a letter.\nState: pursuers at (3, 4) and (9, 1).\n"
    packed = [
        {"prompt": prompt, "branches": [["Stage 1. Answer:", " A"], ["Stage 2. Answer:", " C"]]},
        {"prompt": "Short.\n", "branches": [["Stage 3. Answer:", " B"]]},
    ]
    plain = [{"prompt": r["prompt"] + c, "answer": a} for r in packed for c, a in r["branches"]]

    def answer_logprobs(rows, collator):
        batch = collator(tokenize_examples(tok, check_examples(rows), 256))
        labels = batch.pop("labels")
        with torch.no_grad():
            logits = model(**batch).logits.float()
        out = []
        for r in range(labels.shape[0]):
            for t in range(1, labels.shape[1]):
                if labels[r, t] != -100 and labels[r, t] != tok.eos_token_id:
                    out.append(float(torch.log_softmax(logits[r, t - 1], -1)[labels[r, t]]))
        return out

    got = answer_logprobs(packed, LeftPadCollator(0, model.config, torch.float32))
    ref = answer_logprobs(plain, LeftPadCollator(0))
    assert len(got) == len(ref) == 3
    assert max(abs(a - b) for a, b in zip(got, ref, strict=True)) < 1e-3
    # a branch that does not tokenise apart from its prompt is refused, naming it
    bad = [{"prompt": "State: x.\\nAns", "branches": [["wer:", " A"]]}]
    with pytest.raises(InvalidArgument, match="branch 1"):
        tokenize_examples(tok, bad, 256)
