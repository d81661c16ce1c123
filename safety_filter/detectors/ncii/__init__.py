"""Non-consensual intimate content (NCII): sexual imagery of real people made, shared or taken
without their consent.

One keyword list cannot tell a request to strip a coworker's photo from a victim asking how to
get a fake image of herself taken down, or from a request for an ordinary portrait of a named
singer: the same words appear in all three. `NCIIDetector` therefore combines independent
signals, each with its own span, and only reports `non_consensual` when they add up.

Signals (data in ``blocklists/_ncii/``, which the rules detector does not load):

* **real person**: strong when the text names a listed public figure (``public_figures.yaml``)
  or a relation ("my ex", "ma collègue", ``relations.yaml``); weak when presidio finds a PERSON
  (``safety_filter.pii.find_people``: the `pii` extra, spaCy models from pip, offline; without
  it, a capitalised-words fallback, with a warning), when a listed name is also a common first name, when the text
  points at an image of someone ("this photo of", "cette photo de", "the girl in this pic"), or
  for a bare third-person pronoun ("make her...").
* **intent** (``intent.yaml``): ``alter`` (undress, nudify, sexual deepfake, remove clothes),
  ``nudity`` (nudes, naked, sextape, intimate photos), ``distribute`` (leak, post, publier)
  next to nudity, ``threat`` (sextortion phrasing), ``voyeur_act`` (upskirt, secretly film),
  ``voyeur_device`` next to an intimate setting, ``doxx`` next to sexual content, and ``sexual``
  (explicit content words), ``imagery`` (photo, video, photorealistic, 8k: used with nudity).
* **framing** (``exclusions.yaml``): victim help, news/policy, education and fiction framing
  scale the score down.
* **classifier** (optional): a callable returning, per text, a mapping with the classifier's
  ``sexual`` and ``non_consensual`` scores (e.g. built from ``ClassifierDetector``).

How they combine (a text's score is the maximum over the rules that apply; signals, framing
included, count together only within ``window`` characters of each other):

===========================================================  =====
rule                                                         score
===========================================================  =====
alter + strong person                                        0.95
alter + weak person (NER name, image reference, pronoun)     0.85
alter alone (no person, no image reference, e.g. a question  0.45
  about what such apps are; not for make_naked)
threat + nudity (sextortion)                                 0.90
distribute + nudity + any person                             0.90
distribute + nudity, no person                               0.65
doxx + (nudity | alter | sexual)                             0.90
voyeur act                                                   0.85
voyeur device + intimate setting                             0.85
nudity + strong person (an image prompt naming a singer)     0.85
nudity + NER/ambiguous name + imagery word (photo, 8k...)    0.70
sexual + strong person (sexual scene about a named person)   0.75
sexual + NER/ambiguous name + "you"/"tu" (user in scene)    0.55
nudity or sexual + weak person                               0.45
classifier: non_consensual >= t and a person (no pronoun)   0.5 + 0.45 * p
classifier: sexual >= t and strong person                    0.70
===========================================================  =====

``t`` is the classifier's own recommended threshold per category (``thresholds`` in the model's
config, carried by `classifier_scores_from`; 0.6 when unknown).

Then the strongest matching framing scales the score: victim help x0.3, news/policy x0.35,
education x0.4, fiction x0.5 (fiction only when the score rests on sexual/nudity words and no
strong person: "write a sex scene about <singer>" stays flagged). Two exceptions:

* a sextortion threat is scaled down only by the victim's own framing ("he is threatening
  to...", "should I pay");
* framing never lowers a *directive*: a contributing alter/distribute/voyeur intent that opens
  its clause, at most after a request prefix and a creation verb (a request that opens with
  "for a news story," or "for research:" and then asks for the image), so framing words cannot
  be used to smuggle a request through.

With a classifier: a confident "not non_consensual" (< 0.05) while a framing matched halves the
score once more, and non_consensual >= 0.9 keeps a framed score at 0.5 or above. A classifier-only
hit (no person, no intent) is left to ``ClassifierDetector``'s own finding; this detector does
not duplicate it.

Every list and pattern reads the lowercase, accent-free fold of the model view
(`safety_filter.text.view`): invisible characters, tags, entities, look-alikes, spaced letters
and leetspeak do not hide a word; presidio and the classifier read the model view itself. Spans
are mapped back to the original text. A failure of the NER or of the classifier is logged,
counted (``safety_filter_detector_errors``) and raised as `InspectionError`, so the policy's fail
mode applies and the engine records the error in the verdict and the audit trail.

When the final score reaches ``threshold`` (default 0.5, the policy's default block threshold),
the text gets one finding per contributing signal (``rule_id`` ``ncii:person:<kind>``,
``ncii:intent:<group>:<pattern>``, ``ncii:classifier``) all with the final score and
``category="non_consensual"``, plus an ``ncii:combined`` finding without a span whose evidence
names the rule that fired and any framing that lowered it. Below the threshold nothing is
reported.

The package: ``signals.py`` reads and validates the signal files and holds the signal types;
``scoring.py`` holds the table above as data and the function that evaluates it; ``detector.py``
holds `NCIIDetector`.
"""

from safety_filter.detectors.ncii.detector import NCIIDetector, classifier_scores_from
from safety_filter.detectors.ncii.scoring import NCIIScore
from safety_filter.detectors.ncii.signals import Signal, SignalFileError

__all__ = ["NCIIDetector", "NCIIScore", "Signal", "SignalFileError", "classifier_scores_from"]
