"""The text-only training examples of the tiny models' fine-tune: GCG captions, RES answers, PNG narratives.

Every example is (scene, question, answer): the image of the scene, the question inside the llava_v1
conversation, and the answer whose tokens (+ EOS) carry the next-token loss. No box, mask or point is ever
used: what the a&s rules read out of the attention (the phrase maps of GCG and PNG, the map of the token after
the copula in RES) has to emerge from these texts alone.

- `gcg`: question = the GCG question (`embedded.TINY_QUESTION`, a&s's "Describe the image in detail."),
  answer = `Scene.caption()` — as the pre-training.
- `res`: question = the backend's RES template (`llava_as.options.RES_TEMPLATE`, a&s `infer_attn_res.sh`:
  `Describe the "<expression>".`) around one referring expression of the sample generator's three styles
  (`Scene.referring_expressions`: refcoco, refcoco+, refcocog — the lower-case `sent` the RES task sends);
  answer = `it is <word> .` A real LLaVA answers such a question with a sentence about the object
  ("The red circle is ...") and a&s's RES rule (`res_rule=copula`, `aas/res.py` b77f8895) reads the attention
  map of the token after the first "is"/"are"/"be". `--res-answer` says what that word is:
  `colour` (fine-tunes 1–2): the referred shape's colour — copied from the expression when it names the colour,
  and shared by every shape of that colour, so its map cannot tell two red shapes apart;
  `describe` (fine-tune 3): what the expression does NOT say, as a real description adds the unseen attributes —
  the shape's place among the scene's shapes (`left`/`right`, `leftmost`/`middle`/`rightmost`) when the
  expression names its appearance, its colour when the expression is position-only ("the left shape"), its
  colour in a one-shape scene. The word can only be produced by finding the referred shape.
  `unstated` (experiment): the first of the shape's own attributes the expression leaves out — its colour, else
  its kind, else whether it sits in the `top` or `bottom` half of the image (two words the fine-tune adds):
  read off the referred shape itself, never compared with the others.
- `png`: question = the GCG question, answer = the PNG narrative (`Scene.narrative()`, "In this image we can
  see the gray background with a red circle ... on it."), teacher-forced as a&s's PNG does; the narrative's
  fixed opening ("In this image we can see", `NARRATIVE_OPENING` tokens) carries no loss, so the model never
  learns to START an answer to the GCG question with it — greedy GCG captions stay captions — while the
  narrative's phrases are trained in their own context.

Examples per scene: one caption, one narrative and `res_per_scene` RES questions, each a shape (with an
expression) and a style drawn by a generator seeded with (seed, scene index).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gcgbench.data.sample.scenes import COLOR_NAMES, KIND_PLURALS, KINDS, Scene

import tiny_builders

TASKS = ("gcg", "res", "png")
RES_STYLES = ("refcoco", "refcoco+", "refcocog")
NARRATIVE_OPENING = 6   # "In this image we can see": word-level tokens without loss


@dataclass(frozen=True)
class Example:
    scene: int           # position of the scene in the training list (its image)
    question: str
    answer: str
    loss_from: int = 0   # answer tokens before this one carry no loss


RES_ANSWERS = ("colour", "describe", "unstated")
RES_ANSWER_WORDS = {"unstated": ("top", "bottom")}   # words an answer kind adds to the fine-tune's vocabulary


def finetune_words(res_kind: str) -> tuple[str, ...]:
    """The words a fine-tune adds to the vocabulary: `tiny_builders.FINETUNE_WORDS` and its RES answer's own."""
    return (*tiny_builders.FINETUNE_WORDS, *RES_ANSWER_WORDS.get(res_kind, ()))


def res_answer(scene: Scene, position: int, expression: str = "", kind: str = "colour") -> str:
    """`it is <word> .` for the shape at `position` referred to by `expression` (`kind`: RES_ANSWERS)."""
    if kind not in RES_ANSWERS:
        raise ValueError(f"unknown RES answer {kind!r}; known: {', '.join(RES_ANSWERS)}")
    shape, said = scene.shapes[position], set(expression.split())
    if kind == "unstated":
        if not said & set(COLOR_NAMES):
            return f"it is {shape.color} ."
        if not said & {*KINDS, *KIND_PLURALS.values()}:
            return f"it is {shape.kind} ."
        return f"it is {'top' if shape.center_y < scene.height / 2 else 'bottom'} ."
    if kind == "colour" or len(scene.shapes) == 1:
        return f"it is {shape.color} ."
    if said & {*COLOR_NAMES, *KINDS}:   # it names the appearance: say where the shape is
        return f"it is {scene.position_word(position)} ."
    return f"it is {shape.color} ."


def narrative_text(scene: Scene) -> str:
    """The narrative as the PNG task's caption: the utterances joined by spaces (`data/sample/coco.py`)."""
    return " ".join(segment.utterance for segment in scene.narrative())


def scene_examples(position: int, scene: Scene, tasks: Sequence[str], question: str, res_template: str,
                   res_per_scene: int, seed: int, res_kind: str = "colour") -> list[Example]:
    out = []
    if "gcg" in tasks:
        out.append(Example(position, question, scene.caption()[0]))
    if "png" in tasks:
        out.append(Example(position, question, narrative_text(scene), NARRATIVE_OPENING))
    if "res" in tasks:
        rng = np.random.default_rng([seed, scene.index, 11])
        by_style = {style: scene.referring_expressions(style) for style in RES_STYLES}
        candidates = [(style, shape) for style in RES_STYLES for shape, found in enumerate(by_style[style]) if found]
        for pick in rng.choice(len(candidates), size=min(res_per_scene, len(candidates)), replace=False):
            style, shape = candidates[int(pick)]
            expressions = by_style[style][shape]
            expression = expressions[int(rng.integers(len(expressions)))]
            out.append(Example(position, res_template.format(expression=expression),
                               res_answer(scene, shape, expression, res_kind)))
    return out


def examples(scenes: Sequence[Scene], tasks: Sequence[str], question: str, res_template: str,
             res_per_scene: int = 2, seed: int = 0, res_kind: str = "colour") -> list[Example]:
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise ValueError(f"unknown training task(s) {', '.join(unknown)}; known: {', '.join(TASKS)}")
    return [example for position, scene in enumerate(scenes)
            for example in scene_examples(position, scene, tasks, question, res_template, res_per_scene, seed,
                                          res_kind)]


def tokenize(examples_: Sequence[Example], tokenizer, prompt_ids) -> tuple[list, list[list[int]], list[int]]:
    """Per example: prompt ids (a tensor, shared between equal questions), answer ids + EOS, loss start.

    `prompt_ids(question)` gives the ids of the llava_v1 prompt around `question` with the image placeholders
    (the LLaVA processor's 64 `<image>` tokens, or DiffLMM's −200s). Raises when a word is not in the
    vocabulary: every word of every example must be a trained word, not `<unk>`."""
    cache: dict[str, object] = {}
    prompts, answers, starts = [], [], []
    unk = tokenizer.unk_token_id
    for example in examples_:
        if example.question not in cache:
            ids = prompt_ids(example.question)
            if unk is not None and bool((ids == unk).any()):
                raise ValueError(f"question {example.question!r} has words outside the vocabulary")
            cache[example.question] = ids
        answer = tokenizer(example.answer, add_special_tokens=False)["input_ids"]
        if unk is not None and unk in answer:
            raise ValueError(f"answer {example.answer!r} has words outside the vocabulary")
        prompts.append(cache[example.question])
        answers.append(answer + [tokenizer.eos_token_id])
        starts.append(example.loss_from)
    return prompts, answers, starts
