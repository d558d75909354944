"""Text from a pretrained Hugging Face model folder, string in, string out:

    hf download gpt2 config.json model.safetensors tokenizer.json --local-dir gpt2
    python -m seqjax.generate gpt2 --prompt "The road from recurrent networks" --max-new-tokens 40
    python -m seqjax.generate gpt2 --prompt "..." --beam 4
    python -m seqjax.generate gpt2 --prompt "..." --top-k 50 --top-p 0.9 --temperature 0.8 --seed 1

The folder's model (`seqjax.interop.from_pretrained`: GPT-2 or T5) decodes the prompt encoded by
its own tokenizer (`seqjax.interop.load_tokenizer`): greedy by default, beam search with --beam
(beams ranked by total log-probability), sampling with any of --top-k, --top-p, --temperature
(temperature 1 unless given). A GPT-2 continues the prompt and the prompt is printed with its
continuation; a T5 reads the prompt as its source and its decoder's text alone is printed. The
continuation ends at the config's eos_token_id; a model whose config names no pad_token_id apart
from it (GPT-2) decodes all --max-new-tokens tokens and is cut at its first EOS, as transformers'
`generate` stops there.
"""

import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from seqjax import _validate, decoding
from seqjax.interop import from_pretrained, load_tokenizer
from seqjax.interop.safetensors_folder import CONFIG, read_json_object
from seqjax.interop.tokenizer import Tokenizer
from seqjax.transformer import EncoderDecoder

GENERATIVE = ("gpt2", "t5")  # config.json model_types whose models write text


def _sampling(temperature, top_k, top_p) -> bool:
  return temperature is not None or top_k is not None or top_p is not None


def check_options(vocab_size: int, *, max_new_tokens, beam, temperature, top_k, top_p) -> None:
  """Every decoding option at once, before any model work: greedy, beam or sampling, not two."""
  _validate.positive_int("max_new_tokens", max_new_tokens)
  sampling = _sampling(temperature, top_k, top_p)
  if beam is not None and sampling:
    raise ValueError("beam search takes no temperature, top_k or top_p: give beam or sampling options, not both")
  if beam is not None:
    _validate.positive_int("beam", beam)
  elif sampling:
    decoding.check_sampling(
      1.0 if temperature is None else temperature, top_k, vocab_size, allow_greedy=False, top_p=top_p
    )


def generate(
  model,
  tokenizer: Tokenizer,
  prompt: str,
  *,
  max_new_tokens: int,
  beam: int | None = None,
  temperature: float | None = None,
  top_k: int | None = None,
  top_p: float | None = None,
  seed: int = 0,
) -> str:
  """The model's text for `prompt`: greedy, or beam search (beam), or sampling (any of temperature,
  top_k, top_p); see the module's docstring."""
  options = {"beam": beam, "temperature": temperature, "top_k": top_k, "top_p": top_p}
  check_options(tokenizer.vocab_size, max_new_tokens=max_new_tokens, **options)
  ids = tokenizer.encode(prompt)
  if not ids:
    raise ValueError(f"prompt must encode to at least one token, got {prompt!r}")
  encoder_decoder = isinstance(model, EncoderDecoder)
  if encoder_decoder and tokenizer.decoder_start_id is None:
    raise ValueError("the config names no decoder_start_token_id: the encoder-decoder's decoder has no first token")
  start = [tokenizer.decoder_start_id] if encoder_decoder else ids
  inputs = {"max_new_tokens": max_new_tokens} | ({"src": jnp.asarray([ids], jnp.int32)} if encoder_decoder else {})
  eos, pad = tokenizer.eos_id, tokenizer.pad_id
  if eos is not None and pad is not None and eos != pad:  # rows end at EOS and are padded after it
    inputs |= {"eos_id": eos, "pad_id": pad}
  prompt_ids = jnp.asarray([start], jnp.int32)  # [1, P]
  if beam is not None:
    tokens = decoding.beam_search(model, prompt_ids, beam_size=beam, **inputs)[0][:, 0]  # the best beam
  elif _sampling(temperature, top_k, top_p):
    sampling = {"temperature": 1.0 if temperature is None else temperature, "top_k": top_k, "top_p": top_p}
    tokens, _ = decoding.sample(model, prompt_ids, key=jax.random.key(seed), **sampling, **inputs)
  else:
    tokens, _ = decoding.greedy(model, prompt_ids, **inputs)
  new = np.asarray(tokens[0]).tolist()
  if eos in new:
    new = new[: new.index(eos)]
  return tokenizer.decode(new if encoder_decoder else ids + new)


def main(argv=None) -> str:
  parser = argparse.ArgumentParser(
    prog="python -m seqjax.generate", description="Text from a Hugging Face model folder (GPT-2, T5)."
  )
  parser.add_argument("folder", help="a model folder: config.json, model.safetensors and the tokenizer's files")
  parser.add_argument("--prompt", required=True)
  parser.add_argument("--max-new-tokens", type=int, default=50)
  parser.add_argument("--beam", type=int, default=None, help="beam search with this many beams")
  parser.add_argument("--top-k", type=int, default=None)
  parser.add_argument("--top-p", type=float, default=None)
  parser.add_argument("--temperature", type=float, default=None)
  parser.add_argument("--seed", type=int, default=0, help="the sampling draw's seed")
  args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
  tokenizer = load_tokenizer(args.folder)  # config.json and the tokenizer, checked before the weights load
  model_type = read_json_object(Path(args.folder) / CONFIG).get("model_type")
  if model_type not in GENERATIVE:
    raise ValueError(f"{CONFIG}: model_type {model_type!r} does not generate text here; generating: {GENERATIVE}")
  options = {"beam": args.beam, "temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p}
  check_options(tokenizer.vocab_size, max_new_tokens=args.max_new_tokens, **options)
  text = generate(
    from_pretrained(args.folder), tokenizer, args.prompt, max_new_tokens=args.max_new_tokens, seed=args.seed, **options
  )
  print(text)
  return text


if __name__ == "__main__":
  main()
