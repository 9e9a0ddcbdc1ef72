"""The GPU half of ``bench/gpu_check.sh`` (see there). Needs torch with CUDA; no model files.

The text model is built in code: the tiny test tokenizer (one token per
character) on a Llama of SmolLM2-135M's shape with random weights, so the
speed is that of the default model while nothing needs to be downloaded.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def build_model(folder: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from generation.text.testing import build_tiny_chat_model

    build_tiny_chat_model(folder, context_length=2048)
    small = json.loads((folder / "config.json").read_text())
    config = LlamaConfig(
        vocab_size=small["vocab_size"], hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
        num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048,
        bos_token_id=small["bos_token_id"], eos_token_id=small["eos_token_id"], pad_token_id=small["pad_token_id"],
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def main() -> int:
    import torch

    assert torch.cuda.is_available(), "no CUDA device"
    figures: dict[str, object] = {"gpu": torch.cuda.get_device_name(0)}
    folder = build_model(Path(tempfile.mkdtemp()) / "smol-shape")
    from generation.text import (
        ChatMessage,
        DecodingParams,
        TextRequest,
        clear_text_model_cache,
        load_text_model,
    )
    from generation.text.engine import build_engine, encode_prompt
    from generation.text.testing import tiny_model_entry

    os.environ["ATELIER_TEXT_MODELS"] = tiny_model_entry("smol-shape", folder, context_length=2048)
    prompts = ["tell me a story", "why is the sky blue?", "a", "write a poem about the sea", "hello", "ok, go on",
               "list three colors", "what is a bicycle?"]  # fmt: skip
    params = DecodingParams(max_new_tokens=128)

    def ids(loaded, prompt):
        return encode_prompt(loaded, TextRequest(messages=(ChatMessage("user", prompt),), model="smol-shape"))

    def many(engine, loaded):
        finals = []
        started = time.perf_counter()
        with engine.held():
            streams = [engine.submit(ids(loaded, p), params) for p in prompts]
        threads = [threading.Thread(target=lambda s=s: finals.append(list(s)[-1])) for s in streams]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return finals, time.perf_counter() - started

    for dtype in ("float32", "bfloat16"):
        os.environ["ATELIER_TEXT_DTYPE"] = dtype
        clear_text_model_cache()
        loaded = load_text_model("smol-shape")
        assert loaded.device.startswith("cuda"), loaded.device
        engine = build_engine(loaded, max_batch=8)
        list(engine.submit(ids(loaded, "hi"), DecodingParams(max_new_tokens=8)))
        alone, one_tokens, one_seconds = [], 0, 0.0
        for p in prompts:
            started = time.perf_counter()
            final = list(engine.submit(ids(loaded, p), params))[-1]
            one_seconds += time.perf_counter() - started
            one_tokens += final.completion_tokens
            alone.append(final)
        finals, seconds = many(engine, loaded)
        by_prompt = {f.prompt_tokens: f for f in finals}
        same = sum(by_prompt.get(a.prompt_tokens) is not None and by_prompt[a.prompt_tokens].text == a.text for a in alone)
        one = one_tokens / one_seconds
        total = sum(f.completion_tokens for f in finals) / seconds
        figures[f"{dtype}_one_tok_s"] = round(one, 1)
        figures[f"{dtype}_8_total_tok_s"] = round(total, 1)
        figures[f"{dtype}_8_over_one"] = round(total / one, 2)
        figures[f"{dtype}_same_alone_and_batched"] = f"{same}/8"
        figures[f"{dtype}_batch_max"] = max(f.batch_max for f in finals)
        print(f"text {dtype}: one {one:.0f} tok/s, 8 at once {total:.0f} tok/s ({total / one:.2f}x), "
              f"greedy same alone/batched {same}/8, largest batch {figures[f'{dtype}_batch_max']}")  # fmt: skip
        if dtype == "bfloat16":
            model = loaded.model
            started = time.perf_counter()
            tokens = 0
            for p in prompts[:2]:
                x = torch.tensor([ids(loaded, p)], device=model.device)
                with torch.inference_mode():
                    tokens += model.generate(x, do_sample=False, max_new_tokens=128).shape[1] - x.shape[1]
            generate = tokens / (time.perf_counter() - started)
            figures["bfloat16_generate_tok_s"] = round(generate, 1)
            print(f"text bf16 generate: {generate:.0f} tok/s; engine one stream / generate {one / generate:.2f}x")
            try:
                from transformers import GenerationConfig

                config = GenerationConfig(max_new_tokens=128, do_sample=False, eos_token_id=-1, pad_token_id=0)
                inputs = [ids(loaded, p) for p in prompts]
                started = time.perf_counter()
                out = model.generate_batch(inputs=inputs, generation_config=config)
                cb_seconds = time.perf_counter() - started
                cb_tokens = sum(len(o.generated_tokens) for o in out.values())
                figures["generate_batch_8_total_tok_s"] = round(cb_tokens / cb_seconds, 1)
                print(f"transformers generate_batch, 8 prompts: {cb_tokens / cb_seconds:.0f} tok/s")
            except Exception as exc:  # an evaluation: report, don't fail
                figures["generate_batch_error"] = f"{type(exc).__name__}: {exc}"[:300]
                print("transformers generate_batch failed:", figures["generate_batch_error"])
    from generation.image import ImageRequest, generate_images, load_image_model

    image = load_image_model()
    spec = image.spec
    request = ImageRequest(prompt="a red circle", steps=30, seed=1, num_images=4, width=spec.min_size, height=spec.min_size)
    generate_images(ImageRequest(prompt="warm up", steps=2, seed=0, width=spec.min_size, height=spec.min_size))
    steps: list[float] = []
    started = time.perf_counter()
    generate_images(request, on_step=lambda *a, **k: steps.append(time.perf_counter()))
    elapsed = time.perf_counter() - started
    figures["image_device"] = str(getattr(image, "device", "?"))
    figures["image_s_per_step_4_images"] = round(elapsed / 30, 4)
    print(f"image: 4 images, 30 steps on {figures['image_device']}: {elapsed / 30:.4f} s/step")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
