"""Random and adversarial caption text for comparing the Python caption metrics with the jars.

Deterministic (seeded). Covers what GCG / captioning predictions and references contain and what stresses
each part of the two programs: synonyms, stems, paraphrases (drawn from METEOR's own table), repeated
words, long and one-word captions, punctuation only, empty strings, contractions, quotes, brackets,
ellipses, hyphens, numbers, URLs, e-mail addresses, abbreviations, non-ASCII letters and symbols.
"""

from __future__ import annotations

import random

WORDS = tuple((
    "a an the man woman person people boy girl child kid children dog dogs puppy cat cats horse horses car cars "
    "automobile truck bus bike bicycle street road sidewalk building house home table chair bed room kitchen "
    "sitting sits sat standing stands stood riding rides rode ride walking walks walked running runs ran "
    "holding holds held playing plays played looking looks eating eats ate big large small little tiny huge "
    "red blue green white black brown yellow young old happy near next to on in at of with and is are "
    "front behind top under over beside field grass beach water ocean sea shore sand sky tree trees park "
    "plate food pizza sandwich cake phone laptop computer tv television umbrella rain snow skis skiing "
    "surfboard surfing wave frisbee ball game player players team crowd picture photo image shows "
    "photograph there two three several many some group of his her their its it this that"
).split())

SYNONYM_PAIRS = (
    ("car", "automobile"), ("big", "large"), ("kid", "child"), ("photo", "photograph"), ("tv", "television"),
    ("sea", "ocean"), ("shore", "beach"), ("little", "small"), ("bike", "bicycle"), ("road", "route"),
    ("woman", "female"), ("man", "male"), ("picture", "image"), ("sofa", "couch"), ("mobile", "cellular"),
    ("street", "avenue"), ("stone", "rock"), ("hat", "cap"), ("cup", "mug"), ("kids", "children"),
)
STEM_PAIRS = (
    ("ride", "riding"), ("rides", "ridden"), ("play", "playing"), ("plays", "played"), ("walk", "walking"),
    ("stand", "standing"), ("dog", "dogs"), ("cat", "cats"), ("realization", "realize"), ("quickly", "quick"),
    ("happily", "happy"), ("generous", "generously"), ("organization", "organize"), ("running", "runs"),
)
SPECIAL = (
    "don't", "it's", "can't", "won't", "cannot", "gonna", "wanna", "i'm", "they're", "we've", "you'll",
    "dog's", "dogs'", "o'clock", "rock'n'roll", "'90s", "y'all", "'tis", "(", ")", "[", "]", "{", "}", "-lrb-",
    "-rrb-", "...", "..", ". . .", "\u2026", "--", "-", "\u2013", "\u2014", "well-known", "t-shirt", "x-ray",
    "3,000", "1.5", "$5", "5%", "1/2", "\u00bd", "10:30", "2-3", "#1", "@user", "a&b", "at&t", "u.s.", "e.g.",
    "etc.", "mr.", "dr.", "st.", "no.", "vs.", "i.e.", "www.example.com", "http://x.org/a_b", "me@mail.com",
    "\"", "''", "``", "'", "`", "\u201cquoted\u201d", "\u2018single\u2019", ",", ";", ":", "!", "?", "?!", "*",
    "&", "&amp;", "<", ">", "=", "+", "/", "\\", "|", "||", "|||", "~", "^", "caf\u00e9", "na\u00efve",
    "\u00fcber", "stra\u00dfe", "\u0441\u043e\u0431\u0430\u043a\u0430", "\u00e9t\u00e9", "\u00a0", "\u3000",
    "\u00ad", "\u00b0", "\u00a9", "\u20ac5", "\u00a35", "\u00e6", "\u0153uvre", "DOTMULTI", "A.B.", "ABC",
    "C++", "c#", "hello.world", "a.b.c", "x.", "2.", "3.5.", "abc-", "-abc", "'abc", "abc'", "\u2019s",
)
PUNCTUATION_ONLY = (".", "...", ", ;", "!?", "( )", "-", "--", "' \"", "` ``", ": ;", ". . .", "?", "")


def _caption(rng: random.Random, length: int, pool: tuple[str, ...] = WORDS) -> str:
    return " ".join(rng.choice(pool) for _ in range(length))


def caption(rng: random.Random) -> str:
    """One caption: mostly plain words, with special tokens, synonyms and stems mixed in."""
    kind = rng.random()
    if kind < 0.05:
        return rng.choice(PUNCTUATION_ONLY)
    if kind < 0.10:
        return rng.choice(WORDS + SPECIAL)
    length = rng.choice((3, 5, 8, 10, 12, 15, 20)) if kind < 0.95 else rng.randint(40, 80)
    words = []
    for _ in range(length):
        roll = rng.random()
        if roll < 0.12:
            words.append(rng.choice(SPECIAL))
        elif roll < 0.20:
            words.append(rng.choice(rng.choice(SYNONYM_PAIRS + STEM_PAIRS)))
        else:
            words.append(rng.choice(WORDS))
    text = " ".join(words)
    if rng.random() < 0.3:
        text = text.capitalize()
    if rng.random() < 0.4:
        text += rng.choice((".", " .", "!", "?", "...", " ;", ","))
    if rng.random() < 0.1:
        text = text.replace(" ", rng.choice(("  ", "\t", " \u00a0", "")), rng.randint(1, 3))
    return text


def perturb(rng: random.Random, reference: str) -> str:
    """A hypothesis made from a reference: words swapped for synonyms/stems, dropped, repeated, shuffled."""
    words = reference.split(" ")
    out = []
    for word in words:
        roll = rng.random()
        swap = [b if a == word else a for a, b in SYNONYM_PAIRS + STEM_PAIRS if word in (a, b)]
        if roll < 0.3 and swap:
            out.append(rng.choice(swap))
        elif roll < 0.4:
            continue
        elif roll < 0.5:
            out.extend([word, word])
        else:
            out.append(word)
    if rng.random() < 0.2 and len(out) > 2:
        i = rng.randrange(len(out) - 1)
        out[i], out[i + 1] = out[i + 1], out[i]
    return " ".join(out)


def caption_pairs(count: int, seed: int, paraphrases: list[tuple[str, str]] = ()) -> tuple[list[str], list[list[str]]]:
    """`count` (hypothesis, references) cases; `paraphrases` (phrase, paraphrase) pairs get planted."""
    rng = random.Random(seed)
    hypotheses, references = [], []
    for index in range(count):
        refs = [caption(rng) for _ in range(rng.choice((1, 1, 2, 3, 5)))]
        roll = rng.random()
        if roll < 0.35:
            hypothesis = perturb(rng, rng.choice(refs))
        elif roll < 0.45:
            hypothesis = rng.choice(refs)  # identical: the exact-only path
        elif roll < 0.6 and paraphrases:
            phrase, paraphrase = rng.choice(paraphrases)
            context = _caption(rng, rng.randint(0, 6))
            refs[0] = f"{context} {phrase} {_caption(rng, rng.randint(0, 4))}".strip()
            hypothesis = f"{paraphrase} {context}" if rng.random() < 0.5 else f"{context} {paraphrase}"
        elif roll < 0.65:
            word = rng.choice(WORDS)
            hypothesis = " ".join([word] * rng.randint(1, 12))
            refs[0] = " ".join([word, rng.choice(WORDS)] * rng.randint(1, 6))
        else:
            hypothesis = caption(rng)
        hypotheses.append(hypothesis)
        references.append(refs)
    return hypotheses, references


# For the COCOEvalCap parity tests: ~20 hand-written captions: punctuation, case, quotes, brackets, unicode, several references, empty and
# punctuation-only predictions, predictions equal to their reference after tokenisation.
REFERENCES = {
    "sa_1": ["A man riding a brown horse on the beach."],
    "sa_2": ["Two dogs play with a red ball in the grass."],
    "sa_3": ["A woman holding an umbrella walks down a rainy street."],
    "sa_4": ["A plate of pasta with tomato sauce and basil."],
    "sa_5": ["A red double-decker bus parked beside the road.", "A bus on the side of the street."],
    "sa_6": ["Children (three of them) are playing soccer in a park!"],
    "sa_7": ["A cat sleeping on a laptop keyboard."],
    "sa_8": ["An airplane flying over snowy mountains."],
    "sa_9": ["A bowl of fruit: apples, bananas, and oranges."],
    "sa_10": ["Two people sitting on a bench near a lake."],
    "sa_11": ["A skateboarder does a trick on a ramp."],
    "sa_12": ["A close-up of a sunflower in a field."],
    "sa_13": ["A kitchen with white cabinets and a stainless steel fridge."],
    "sa_14": ["A boy's bicycle leaning against a brick wall."],
    "sa_15": ["The train arrives at the station; passengers wait."],
    "sa_16": ["A dog"],
    "sa_17": [
        "A giraffe eating leaves from a tall tree.",
        "A giraffe reaching up to eat from a tree.",
        "Giraffe feeding on tree leaves.",
    ],
    "sa_18": ["Café patrons sit outside under a striped awning."],
    "sa_19": ["A laptop, a mug and a notebook on a desk."],
    "sa_20": ['"Stop" sign at an intersection -- red and white.'],
}
PREDICTIONS = {
    "sa_1": "a man rides a horse along the beach",
    "sa_2": "Two dogs play with a red ball in the grass.",
    "sa_3": "",
    "sa_4": "...",
    "sa_5": "a red bus is parked by the road",
    "sa_6": "kids playing football in the park",
    "sa_7": "A CAT SLEEPING ON A LAPTOP KEYBOARD",
    "sa_8": "a plane flies above the mountains covered in snow",
    "sa_9": "a bowl with apples and bananas",
    "sa_10": "a couple sits on a bench by the water",
    "sa_11": "a person on a skateboard",
    "sa_12": "a yellow flower in a field of sunflowers",
    "sa_13": "a white kitchen",
    "sa_14": "a bicycle leans against a wall made of bricks",
    "sa_15": "people waiting for a train at a station",
    "sa_16": "a dog",
    "sa_17": "a giraffe eats leaves from a tree",
    "sa_18": "people sit at a café outside",
    "sa_19": "a desk with a laptop and a cup of coffee",
    "sa_20": "a red stop sign at the corner",
}
