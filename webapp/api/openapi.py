"""The OpenAPI 3.1 description of ``/v1`` (served at ``/v1/openapi.json``).

Bounds are read from the engines, so the document says what the server enforces.
"""
from __future__ import annotations

from typing import Any

from webapp.api.params import MAX_CHOICES


def _error() -> dict[str, Any]:
    return {"description": "An error in OpenAI's shape.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _errors(*codes: str) -> dict[str, Any]:
    return {code: _error() for code in codes}


def openapi_document(*, server_url: str) -> dict[str, Any]:
    from generation.image.request import (
        MAX_GUIDANCE,
        MAX_IMAGES,
        MAX_PROMPT_CHARS,
        MAX_STEPS,
        MIN_STEPS,
        SCHEDULERS,
    )
    from generation.text.validation import MAX_BEAMS, MAX_SEED, MAX_STOP_LENGTH, MAX_STOP_SEQUENCES

    stop = {"oneOf": [
        {"type": "string", "minLength": 1, "maxLength": MAX_STOP_LENGTH},
        {"type": "array", "maxItems": MAX_STOP_SEQUENCES, "items": {"type": "string", "minLength": 1, "maxLength": MAX_STOP_LENGTH}},
        {"type": "null"},
    ]}
    decoding: dict[str, Any] = {
        "model": {"type": "string", "description": "A text model id from GET /v1/models."},
        "max_tokens": {"type": ["integer", "null"], "minimum": 1, "description": "Tokens to generate at most (default 256)."},
        "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2, "description": "0 decodes greedily."},
        "top_p": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1},
        "stop": stop,
        "seed": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_SEED},
        "n": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_CHOICES},
        "stream": {"type": ["boolean", "null"], "description": "Server-Sent Events, ending with data: [DONE]."},
        "stream_options": {"type": ["object", "null"], "properties": {"include_usage": {"type": "boolean"}}},
        "top_k": {"type": ["integer", "null"], "minimum": 0, "description": "Extension: sample among the k likeliest (0 = off)."},
        "num_beams": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_BEAMS, "description": "Extension: beam search above 1."},
        "repetition_penalty": {"type": ["number", "null"], "minimum": 1, "maximum": 2, "description": "Extension."},
        "length_penalty": {"type": ["number", "null"], "minimum": -2, "maximum": 2, "description": "Extension, for beams."},
        "user": {"type": "string"},
    }
    edit_fields: dict[str, Any] = {
        "image": {"type": "string", "format": "binary", "description": "PNG, JPEG or WebP; re-encoded as PNG."},
        "model": {"type": "string"}, "n": {"type": "integer", "minimum": 1},
        "size": {"type": "string", "description": "'auto' or the size the edit makes (the image's, or scaled)"},
        "response_format": {"enum": ["url", "b64_json"]},
        "strength": {"type": "number", "minimum": 0.05, "maximum": 1.0}, "steps": {"type": "integer"},
        "seed": {"type": "integer"}, "scheduler": {"type": "string"}, "negative_prompt": {"type": "string"},
        "guidance_scale": {"type": "number"}, "mask_blur": {"type": "integer"},
        "inpaint_area": {"enum": ["whole", "only_masked"]}, "padding": {"type": "integer"},
        "outpaint_sides": {"type": "string", "description": "comma-separated: left,right,top,bottom"},
        "outpaint_pixels": {"type": "integer"}, "fill": {"enum": ["noise", "edge", "blur"]}, "scale": {"enum": [2, 4]},
    }
    message = {
        "type": "object", "required": ["role", "content"],
        "properties": {
            "role": {"type": "string", "enum": ["system", "developer", "user", "assistant"]},
            "content": {"oneOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "object", "required": ["type", "text"],
                                            "properties": {"type": {"const": "text"}, "text": {"type": "string"}}}},
            ]},
        },
    }
    usage = {"type": "object", "properties": {k: {"type": "integer"} for k in ("prompt_tokens", "completion_tokens", "total_tokens")}}
    json_body = lambda ref: {"required": True, "content": {"application/json": {"schema": {"$ref": ref}}}}  # noqa: E731
    ok = lambda ref, extra="": {  # noqa: E731
        "description": "OK" + extra, "content": {"application/json": {"schema": {"$ref": ref}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Atelier API", "version": "1",
            "description": "OpenAI-compatible text and image generation. Keys are made on a project's API page; "
                           "a key acts as its user within that project.",
        },
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}],
        "paths": {
            "/models": {"get": {"operationId": "listModels", "responses": {"200": ok("#/components/schemas/ModelList"), **_errors("401", "429")}}},
            "/models/{model}": {"get": {
                "operationId": "getModel",
                "parameters": [{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": ok("#/components/schemas/Model"), **_errors("401", "404", "429")},
            }},
            "/chat/completions": {"post": {
                "operationId": "createChatCompletion", "requestBody": json_body("#/components/schemas/ChatRequest"),
                "responses": {"200": ok("#/components/schemas/ChatCompletion", " (text/event-stream when stream is true)"),
                              **_errors("400", "401", "403", "404", "429", "503")},
            }},
            "/completions": {"post": {
                "operationId": "createCompletion", "requestBody": json_body("#/components/schemas/CompletionRequest"),
                "responses": {"200": ok("#/components/schemas/Completion", " (text/event-stream when stream is true)"),
                              **_errors("400", "401", "403", "404", "429", "503")},
            }},
            "/images/generations": {"post": {
                "operationId": "createImage", "requestBody": json_body("#/components/schemas/ImageRequest"),
                "responses": {"200": ok("#/components/schemas/ImagesResponse", " (progress as text/event-stream when stream is true)"),
                              **_errors("400", "401", "403", "404", "429", "503")},
            }},
            # Issue 19: OpenAI's multipart shapes, with Atelier's extensions as extra fields.
            "/images/edits": {"post": {
                "operationId": "createImageEdit",
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {"$ref": "#/components/schemas/ImageEditRequest"}}}},
                "responses": {"200": ok("#/components/schemas/ImagesResponse", ""),
                              **_errors("400", "401", "403", "404", "429", "503")},
            }},
            "/images/variations": {"post": {
                "operationId": "createImageVariation",
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {"$ref": "#/components/schemas/ImageVariationRequest"}}}},
                "responses": {"200": ok("#/components/schemas/ImagesResponse", ""),
                              **_errors("400", "401", "403", "404", "429", "503")},
            }},
            # Issue 24: project knowledge's files and embeddings, in OpenAI's shapes.
            "/files": {
                "get": {"operationId": "listFiles",
                        "responses": {"200": ok("#/components/schemas/FileList"), **_errors("401", "429")}},
                "post": {"operationId": "createFile",
                         "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {"$ref": "#/components/schemas/FileRequest"}}}},
                         "responses": {"200": ok("#/components/schemas/File"), **_errors("400", "401", "403", "429")}},
            },
            "/embeddings": {"post": {
                "operationId": "createEmbedding", "requestBody": json_body("#/components/schemas/EmbeddingRequest"),
                "responses": {"200": ok("#/components/schemas/EmbeddingList"), **_errors("400", "401", "404", "429", "503")},
            }},
            "/images/{asset_id}/content": {"get": {
                "operationId": "getImage",
                "parameters": [{"name": "asset_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                "responses": {"200": {"description": "The PNG, with its parameters in its text chunks.",
                                      "content": {"image/png": {}}}, **_errors("401", "404", "429")},
            }},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["message", "type", "param", "code"],
                    "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                                   "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}},
                }}},
                "ImageEditRequest": {"type": "object", "required": ["image", "prompt"], "properties": {
                    **edit_fields, "prompt": {"type": "string"},
                    "mask": {"type": "string", "format": "binary",
                             "description": "PNG with alpha; fully transparent pixels mark the area to change."},
                    "mode": {"enum": ["img2img", "inpaint", "outpaint", "upscale", "variations"]}}},
                "ImageVariationRequest": {"type": "object", "required": ["image"], "properties": edit_fields},
                "FileRequest": {"type": "object", "required": ["file", "purpose"], "properties": {
                    "file": {"type": "string", "format": "binary"}, "purpose": {"const": "assistants"}}},
                "File": {"type": "object", "required": ["id", "object", "status"], "properties": {
                    "id": {"type": "string"}, "object": {"const": "file"}, "bytes": {"type": "integer"},
                    "created_at": {"type": "integer"}, "filename": {"type": "string"}, "purpose": {"const": "assistants"},
                    "status": {"enum": ["uploaded", "processed", "error"]}, "status_details": {"type": ["string", "null"]}}},
                "FileList": {"type": "object", "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": {"$ref": "#/components/schemas/File"}}}},
                "EmbeddingRequest": {"type": "object", "required": ["model", "input"], "properties": {
                    "model": {"type": "string"},
                    "input": {"oneOf": [{"type": "string", "minLength": 1},
                                        {"type": "array", "minItems": 1, "maxItems": 2048, "items": {"type": "string", "minLength": 1}}]},
                    "encoding_format": {"enum": ["float", "base64"]}, "user": {"type": "string"}}},
                "EmbeddingList": {"type": "object", "properties": {
                    "object": {"const": "list"}, "model": {"type": "string"}, "usage": {"type": "object"},
                    "data": {"type": "array", "items": {"type": "object", "properties": {
                        "object": {"const": "embedding"}, "index": {"type": "integer"},
                        "embedding": {"oneOf": [{"type": "array", "items": {"type": "number"}}, {"type": "string"}]}}}}}},
                "Model": {"type": "object", "required": ["id", "object"], "properties": {
                    "id": {"type": "string"}, "object": {"const": "model"}, "created": {"type": "integer"},
                    "owned_by": {"type": "string"}, "kind": {"enum": ["text", "image"]}}},
                "ModelList": {"type": "object", "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": {"$ref": "#/components/schemas/Model"}}}},
                "ChatRequest": {"type": "object", "required": ["model", "messages"], "properties": {
                    **decoding, "messages": {"type": "array", "minItems": 1, "items": message},
                    "max_completion_tokens": {"type": ["integer", "null"], "minimum": 1}}},
                "CompletionRequest": {"type": "object", "required": ["model", "prompt"], "properties": {
                    **decoding, "prompt": {"type": "string", "minLength": 1}}},
                "ChatCompletion": {"type": "object", "properties": {
                    "id": {"type": "string"}, "object": {"const": "chat.completion"}, "created": {"type": "integer"},
                    "model": {"type": "string"}, "usage": usage,
                    "choices": {"type": "array", "items": {"type": "object", "properties": {
                        "index": {"type": "integer"}, "finish_reason": {"enum": ["stop", "length"]},
                        "message": {"type": "object", "properties": {"role": {"const": "assistant"}, "content": {"type": "string"}}}}}}}},
                "Completion": {"type": "object", "properties": {
                    "id": {"type": "string"}, "object": {"const": "text_completion"}, "created": {"type": "integer"},
                    "model": {"type": "string"}, "usage": usage,
                    "choices": {"type": "array", "items": {"type": "object", "properties": {
                        "index": {"type": "integer"}, "text": {"type": "string"}, "finish_reason": {"enum": ["stop", "length"]}}}}}},
                "ImageRequest": {"type": "object", "required": ["prompt"], "properties": {
                    "prompt": {"type": "string", "minLength": 1, "maxLength": MAX_PROMPT_CHARS},
                    "model": {"type": "string"}, "n": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_IMAGES},
                    "size": {"type": ["string", "null"], "pattern": "^([0-9]+x[0-9]+|auto)$", "description": "WIDTHxHEIGHT, multiples of 8 within the model's range."},
                    "response_format": {"enum": ["url", "b64_json", None]},
                    "stream": {"type": ["boolean", "null"]},
                    "negative_prompt": {"type": "string", "maxLength": MAX_PROMPT_CHARS, "description": "Extension."},
                    "steps": {"type": "integer", "minimum": MIN_STEPS, "maximum": MAX_STEPS, "description": "Extension."},
                    "guidance_scale": {"type": "number", "minimum": 0, "maximum": MAX_GUIDANCE, "description": "Extension."},
                    "scheduler": {"enum": list(SCHEDULERS), "description": "Extension."},
                    "seed": {"type": "integer", "minimum": 0, "description": "Extension."},
                    "user": {"type": "string"}}},
                "ImagesResponse": {"type": "object", "properties": {
                    "created": {"type": "integer"},
                    "data": {"type": "array", "items": {"type": "object", "properties": {
                        "url": {"type": "string"}, "b64_json": {"type": "string"}}}}}},
            },
        },
    }
