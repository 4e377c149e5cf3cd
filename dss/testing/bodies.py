"""Response bodies of the two teacher protocols, shared by the fake teacher and its fake batch jobs."""

from __future__ import annotations


def texts_of(body, openai: bool) -> tuple[str, str]:
    """(system text, last user text) of a request body."""
    body = body or {}
    if openai:
        msgs = body.get("messages") or []
        system = " ".join(m.get("content", "") for m in msgs if m.get("role") == "system")
        users = [m.get("content", "") for m in msgs if m.get("role") == "user"]
        return system, users[-1] if users else ""
    sys_inst = body.get("systemInstruction") or body.get("system_instruction") or {}
    system = " ".join(p.get("text", "") for p in sys_inst.get("parts", []))
    users = [c for c in body.get("contents", []) if c.get("role", "user") == "user"]
    user = " ".join(p.get("text", "") for p in users[-1].get("parts", [])) if users else ""
    return system, user


def openai_body(texts: list[str], n_in: int, n_out: int, thought: int = 0, model: str = "fake",
                cut: bool = False) -> dict:
    """A chat.completion; cut=True: every choice stopped at max_tokens (finish_reason "length")."""
    finish = "length" if cut else "stop"
    choices = [{"index": k, "message": {"role": "assistant", "content": t}, "finish_reason": finish}
               for k, t in enumerate(texts)]
    usage = {"prompt_tokens": n_in, "completion_tokens": n_out + thought, "total_tokens": n_in + n_out + thought}
    if thought:
        usage["completion_tokens_details"] = {"reasoning_tokens": thought}
    return {"id": "chatcmpl-fake", "object": "chat.completion", "model": model, "choices": choices,
            "usage": usage}


def gemini_body(texts: list[str], n_in: int, n_out: int, thought: int = 0, model: str | None = None,
                cut: bool = False) -> dict:
    """A GenerateContentResponse; cut=True: every candidate stopped at maxOutputTokens (finishReason MAX_TOKENS)."""
    finish = "MAX_TOKENS" if cut else "STOP"
    cands = [{"content": {"role": "model", "parts": [{"text": t}]}, "finishReason": finish, "index": k}
             for k, t in enumerate(texts)]
    usage = {"promptTokenCount": n_in, "candidatesTokenCount": n_out, "totalTokenCount": n_in + n_out + thought}
    if thought:
        usage["thoughtsTokenCount"] = thought
    body = {"candidates": cands, "usageMetadata": usage}
    if model:
        body["modelVersion"] = model
    return body
