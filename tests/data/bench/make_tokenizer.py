"""Write the byte tokenizer the benchmark clients use against tests/bench_stub.py (GuideLLM
and AIPerf need a tokenizer to make prompts and count tokens; this one is local, so no run
reaches the Hugging Face hub): one token per byte (a byte-level BPE without merges, 256
tokens), no special tokens. The stub streams the one-byte word ``x`` per token, so a client
counting tokens with it counts what was sent. Needs the ``tokenizers`` and ``transformers``
packages (installed with either client).

    python tests/data/bench/make_tokenizer.py tests/data/bench/tokenizer
"""

import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

alphabet = pre_tokenizers.ByteLevel.alphabet()
tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(sorted(alphabet))}, merges=[]))
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
tok.decoder = decoders.ByteLevel()
fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=1 << 20)
fast.save_pretrained(sys.argv[1])
