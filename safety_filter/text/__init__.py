"""The text layer every detector reads: one normaliser, the model view, language, sentences.

* `normalize(text)`: the matching form (casefolded, accents, look-alikes, leetspeak, separators
  and repeated letters folded) the rule lists match, with a span map back to the original;
* `model_view(text)`: the natural text a model reads, with invisible characters, tags,
  entities, look-alikes and spaced letters undone, with the same span map;
* `guess_language(text)`: "en" or "fr";
* `sentence_spans(text)`: (start, end) of each sentence, for per-sentence views.
"""

from safety_filter.text.language import guess_language
from safety_filter.text.normalize import Normalized, normalize, normalize_text
from safety_filter.text.sentences import sentence_spans
from safety_filter.text.view import lower_fold, model_view

__all__ = [
    "Normalized",
    "guess_language",
    "lower_fold",
    "model_view",
    "normalize",
    "normalize_text",
    "sentence_spans",
]
