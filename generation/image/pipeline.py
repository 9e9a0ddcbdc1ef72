"""``AtelierShapesPipeline``: the default model's diffusers pipeline.

A pixel-space text-to-image pipeline (no VAE) whose ``__call__`` takes the same
arguments as Stable Diffusion's, so the engine drives it exactly like any other
diffusers pipeline: schedulers swap with ``from_config``, progress and
interruption go through ``callback_on_step_end``.

The same ``__call__`` also edits: given ``image`` (and ``strength``) it starts
from the noised source as Stable Diffusion's image-to-image pipeline does, and
given ``mask_image`` as well it puts the source, noised to the next step's
level, back outside the mask after every step (the latent blend of diffusers'
inpainting pipeline; here the "latents" are the pixels themselves).

Importing this module imports torch and diffusers; import it lazily.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

COORDINATE_CHANNELS = 2


def with_coordinates(pixels: torch.Tensor, unet: Any) -> torch.Tensor:
    """``pixels`` (N x 3 x H x W) with the x and y coordinate channels appended when ``unet`` takes them.

    A convolution sees the same thing everywhere, so from pure noise (the first
    sampling step) a UNet has nothing but its zero padding to tell the top left
    from the bottom right, and "in the top left" cannot move the image
    (README, issue 25). Two channels holding each pixel's x and y, from -1 to 1
    across the image whatever its size, tell it (CoordConv, Liu et al., 2018). A
    UNet with three input channels (the first default model) gets the pixels alone.
    """
    extra = unet.config.in_channels - pixels.shape[1]
    if extra == 0:
        return pixels
    if extra != COORDINATE_CHANNELS:
        raise ValueError(f"the UNet takes {unet.config.in_channels} channels; expected 3 or 5")
    n, _, height, width = pixels.shape
    ys = torch.linspace(-1.0, 1.0, height, device=pixels.device, dtype=pixels.dtype)
    xs = torch.linspace(-1.0, 1.0, width, device=pixels.device, dtype=pixels.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    coordinates = torch.stack([grid_x, grid_y])[None].expand(n, -1, -1, -1)
    return torch.cat([pixels, coordinates], dim=1)


class AtelierShapesPipeline(DiffusionPipeline):
    """Text-conditioned denoising directly on RGB pixels in [-1, 1]."""

    model_cpu_offload_seq = "text_encoder->unet"
    _callback_tensor_inputs = ["latents", "prompt_embeds", "negative_prompt_embeds"]

    def __init__(self, unet: Any, text_encoder: Any, tokenizer: Any, scheduler: Any) -> None:
        super().__init__()
        self.register_modules(unet=unet, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)
        self._interrupt = False
        self._num_timesteps = 0

    @property
    def interrupt(self) -> bool:
        return self._interrupt

    @property
    def num_timesteps(self) -> int:
        return self._num_timesteps

    def encode_prompt(self, prompts: list[str], device: torch.device | str) -> torch.Tensor:
        tokens = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        )
        return self.text_encoder(tokens.input_ids.to(device))[0]

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        negative_prompt: str | list[str] | None = None,
        num_inference_steps: int = 25,
        guidance_scale: float = 3.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        height: int | None = None,
        width: int | None = None,
        num_images_per_prompt: int = 1,
        latents: torch.Tensor | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: list[str] | tuple[str, ...] = ("latents",),
        image: Image.Image | None = None,
        mask_image: Image.Image | None = None,
        strength: float = 1.0,
    ) -> ImagePipelineOutput | tuple:
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        negatives = negative_prompt or ""
        negatives = [negatives] * len(prompts) if isinstance(negatives, str) else list(negatives)
        size = self.unet.config.sample_size
        height, width = height or size, width or size
        device, dtype = self._execution_device, self.unet.dtype
        self._interrupt = False

        prompt_embeds = self.encode_prompt(prompts, device).repeat_interleave(num_images_per_prompt, 0)
        do_cfg = guidance_scale > 1.0
        negative_prompt_embeds = None
        if do_cfg:
            negative_prompt_embeds = self.encode_prompt(negatives, device).repeat_interleave(
                num_images_per_prompt, 0
            )
        batch = len(prompts) * num_images_per_prompt
        embeds = torch.cat([negative_prompt_embeds, prompt_embeds]) if do_cfg else prompt_embeds

        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        init = mask = None
        if image is not None:
            init = _pixels_to_tensor(image, device, dtype)
            height, width = init.shape[-2:]
            if strength < 1.0:
                # Skip the noisiest steps, as diffusers' img2img get_timesteps does.
                order = self.scheduler.order
                kept = min(max(int(num_inference_steps * strength), 1), num_inference_steps)
                t_start = num_inference_steps - kept
                timesteps = timesteps[t_start * order :]
                if hasattr(self.scheduler, "set_begin_index"):
                    self.scheduler.set_begin_index(t_start * order)
        if mask_image is not None:
            if init is None:
                raise ValueError("mask_image needs image")
            mask = _mask_to_tensor(mask_image, device, dtype)
        self._num_timesteps = len(timesteps)
        batch_shape = (batch, self.unet.config.out_channels, height, width)
        noise = None
        if latents is None:
            noise = randn_tensor(batch_shape, generator=generator, device=torch.device(device), dtype=dtype)
            latents = noise
        if init is not None and strength < 1.0:
            init = init.expand(batch, -1, -1, -1)
            latents = self.scheduler.add_noise(init, latents, timesteps[:1].repeat(batch))
        else:
            latents = latents * self.scheduler.init_noise_sigma
        if init is not None:
            init = init.expand(batch, -1, -1, -1)
        # As diffusers' prepare_extra_step_kwargs: UniPC's step takes no generator.
        accepted = inspect.signature(self.scheduler.step).parameters
        step_kwargs = {"generator": generator} if "generator" in accepted else {}
        for i, t in enumerate(self.progress_bar(timesteps)):
            if self.interrupt:
                continue
            model_input = torch.cat([latents, latents]) if do_cfg else latents
            model_input = self.scheduler.scale_model_input(model_input, t)
            model_input = with_coordinates(model_input, self.unet)
            noise_pred = self.unet(model_input, t, encoder_hidden_states=embeds).sample
            if do_cfg:
                uncond, cond = noise_pred.chunk(2)
                noise_pred = uncond + guidance_scale * (cond - uncond)
            latents = self.scheduler.step(noise_pred, t, latents, **step_kwargs).prev_sample
            if mask is not None and init is not None and noise is not None:
                known = init
                if i < len(timesteps) - 1:
                    known = self.scheduler.add_noise(init, noise, timesteps[i + 1 : i + 2].repeat(batch))
                latents = mask * latents + (1 - mask) * known
            if callback_on_step_end is not None:
                scope = locals()
                outputs = callback_on_step_end(
                    self, i, t, {name: scope[name] for name in callback_on_step_end_tensor_inputs}
                )
                latents = outputs.pop("latents", latents)

        images = (latents / 2 + 0.5).clamp(0, 1)
        self.maybe_free_model_hooks()
        if output_type == "pt":
            result: Any = images
        else:
            array = images.permute(0, 2, 3, 1).float().cpu().numpy()
            if output_type == "np":  # diffusers' convention: float in [0, 1]
                result = array
            else:
                result = [Image.fromarray(a) for a in (array * 255).round().astype(np.uint8)]
        if not return_dict:
            return (result,)
        return ImagePipelineOutput(images=result)


def _pixels_to_tensor(image: Image.Image, device: Any, dtype: torch.dtype) -> torch.Tensor:
    """An RGB PIL image as a 1x3xHxW tensor in [-1, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1)[None].to(device=device, dtype=dtype)


def _mask_to_tensor(mask: Image.Image, device: Any, dtype: torch.dtype) -> torch.Tensor:
    """A greyscale mask (white = repaint) as a 1x1xHxW tensor in [0, 1]."""
    array = np.asarray(mask.convert("L"), dtype=np.float32) / 255.0
    return torch.from_numpy(array)[None, None].to(device=device, dtype=dtype)
