"""The model card beside the reader's weights: ``card.json`` (read by the service: the
settings it was validated with and the checksum of every file) and ``README.md`` (the same
for people)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..cards import CARD, sha256_of
from ..config import TABLE_ROWS, table_reading
from ..read import FILES
from .decider import CONFIDENT


def write_card(
    folder: Path, card: dict[str, Any], files: Sequence[str] = FILES, readme: bool = True
) -> dict[str, Any]:
    """Record the checksum and size of each of ``files``, then write the card (and, for a
    reader, its form for people)."""
    card = dict(card)
    card["files"] = {
        name: {"sha256": sha256_of(folder / name), "bytes": (folder / name).stat().st_size}
        for name in files
    }
    (folder / CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
    if readme and "training" in card:  # a draft, written to read validation, has no story yet
        (folder / "README.md").write_text(render(card))
    return card


def _table(rows: dict[str, dict[str, Any]]) -> list[str]:
    names = [
        "support@1",
        "answer_hit",
        "false_abstain",
        "abstain",
        "followup",
        "answer_chars_median",
    ]
    out = ["| set | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for label, m in rows.items():
        out.append(f"| {label} | " + " | ".join(str(m.get(n, "-")) for n in names) + " |")
    return out


def render(card: dict[str, Any]) -> str:
    t, d, f = card["training"], card["data"], card["figures"]
    teachers = t.get("teachers") or []
    # how it reads table rows comes from the environment (QA_TABLE_ROWS): its commands say so
    # where their default would not (training's: header; a choice's: the trained reading)
    trained, chosen = t.get("table_rows", TABLE_ROWS[0]), table_reading("", card)
    named = chosen == "named"
    command = (
        f"QA_TABLE_ROWS={trained} {t['command']}" if trained != TABLE_ROWS[0] else t["command"]
    )
    again = card.get("rechosen", {}).get("command", "")
    again = f"QA_TABLE_ROWS={chosen} {again}" if chosen != trained else again
    lines = [
        f"# Model card: {card['name']}",
        "",
        "Finds the answer span in a sentence and says when a sentence does not answer, for",
        "the `qa` service. Retrained from `train/` with one command"
        + (", given its teachers (below):" if teachers else ":"),
        "",
        f"    {command}",
        "",
        *(
            [
                "and its settings (not its weights) chosen again, with the code of that day, by:",
                "",
                f"    {again}",
                "",
            ]
            if "rechosen" in card
            else []
        ),
        "## Model",
        "",
        f"- Base: {card['base_model']}",
        f"- Architecture: {card['architecture']}; no-answer score from [CLS] (SQuAD 2.0)",
        f"- Quantisation: {card['quantization']}",
        f"- Token budgets: {json.dumps(card['limits'])}",
        "- Markdown table rows read "
        + ("as named cells (`Port: 2525`)" if named else "after their header row")
        + " (the service reads them so unless `QA_TABLE_ROWS` says otherwise)",
        *(
            [
                f"- Orders the best {card['ranker'].get('ranked')} retrieved sentences by a ranker "
                "(a conditional logit over cheap retrieval signals, fitted on the training "
                "split) before reading"
            ]
            if isinstance(card.get("ranker"), dict)
            else []
        ),
        f"- Reads {card['candidates']} retrieved sentences a question; answers when "
        + (
            "the decider's score (the log-odds, from the readings and the retrieval, that the "
            "documents answer; a logistic regression fitted on validation) reaches "
            if "decider" in card
            else "the best margin reaches "
        )
        + f"{card['threshold']}",
        *(
            [
                f"- When the first batch's score is from {card['further']['below']} to under "
                f"{card['threshold']}, reads the next {card['candidates']} and answers from all "
                f"{2 * card['candidates']} when "
                + ("a decider fitted on them" if "decider" in card["further"] else "the margin")
                + f" reaches {card['further']['threshold']} (confidence: answer "
                f"{card['further']['calibration']['answer']}, abstention "
                f"{card['further']['calibration']['abstain']})"
            ]
            if "further" in card
            else []
        ),
        f"- The answer covers every span of its sentence scoring within {card.get('slack', 0.0)} "
        "of the best",
        f"- Confidence: {card['calibration']['method']}: answer "
        + (
            f"the logistic regression `calibration.right` in card.json, over "
            f"{len(card['calibration']['right']['features'])} inputs (the score's own curve, "
            f"kept for an older qa: {card['calibration']['answer']})"
            if isinstance(card["calibration"].get("right"), dict)
            else f"{card['calibration']['answer']}"
        )
        + f", abstention {card['calibration']['abstain']}"
        + (
            f", citation {card['calibration']['citation']}"
            if "citation" in card["calibration"]
            else ""
        ),
        "",
        "## Training",
        "",
        f"- Date: {t['date']}; {t['seconds']} s on the CPU; seed {t['seed']}"
        + (f", order seed {t['order_seed']}" if t.get("order_seed") is not None else ""),
        *(
            [
                f"- Its weights are the mean of {len(t['averaged'])} readers' "
                "(`qa train --average`; the figures above are the mean's, the other lines "
                "here the first reader's training): "
                + "; ".join(
                    f"reader {x['name']} (seed {x['seed']}"
                    + (f", order seed {x['order_seed']}" if x.get("order_seed") is not None else "")
                    + f"; `{x['command']}`)"
                    for x in t["averaged"]
                )
            ]
            if t.get("averaged")
            else []
        ),
        f"- {t['epochs']} epochs planned, epoch {t['kept_epoch']} kept; batch {t['batch_size']}, "
        f"learning rate {t['lr']}, {t['negatives']} retrieved negatives a question; "
        f"{t['rows']} rows, {t['steps']} steps",
        f"- Data: `{d['corpus']}`, {d['documents']} documents, {d['questions']} questions; "
        f"{d['train_questions']} training and {d['validation_questions']} validation questions "
        f"({len(d['validation_documents'])} validation documents, split by document)",
        f"- sha256 of the documents {d['sha256']['documents']}, of the questions "
        f"{d['sha256']['questions']}",
        *(
            [
                f"- Distilled from {len(teachers)} teacher(s), weighed {t['distill']} against "
                f"the labels at temperature {t['temperature']}: "
                + "; ".join(f"reader {x['name']} (`{x['command']}`)" for x in teachers)
            ]
            if teachers
            else []
        ),
        *(
            [
                f"- A shared normalisation over each question's sentences added to the loss, "
                f"weighed {t['listwise']} (`--listwise`)"
            ]
            if t.get("listwise")
            else []
        ),
        *(
            [
                f"- One negative a question from the other documents of a pool of {t['pool']} "
                "training documents, where retrieval ranks them high (`--pool`)"
            ]
            if t.get("pool")
            else []
        ),
        *(
            [
                "- Training questions repeated, band by band of their words' overlap with their "
                "document's nearest sentence, toward the overall share of unanswerable ones: "
                f"{sum(b['repeated'] for b in t['balanced']['bands'])} repeats "
                "(`--balance-overlap`)"
            ]
            if t.get("balanced")
            else []
        ),
        *(
            [
                f"- The embeddings and the first {t['frozen']} of the {t['layers']} layers kept "
                "as pretrained, their outputs computed once (`--frozen`)"
            ]
            if t.get("frozen")
            else []
        ),
        f"- Versions: {json.dumps(card['versions'])}",
        *(
            [
                f"- Settings chosen again on {card['rechosen']['date']}, weights kept (reader "
                f"{card['rechosen']['from']}): `{card['rechosen']['command']}`; validation sets "
                + ", ".join(f"`{v}`" for v in card["rechosen"]["data"]["validation_sets"])
            ]
            if "rechosen" in card
            else []
        ),
        "",
        "## Figures",
        "",
        "Validation (chooses the number of sentences, the slack, the decider, the threshold "
        "and the calibration; each set weighs the same)" + _objective(f["validation"]) + ":",
        "",
        *_table(
            {
                **f["validation"]["chosen"],
                **(
                    {"validation, float model": f["validation_float"]}
                    if "validation_float" in f
                    else {}
                ),
            }
        ),
        "",
        *_reasked(f["validation"]),
        *_crossfitted(f["validation"]),
    ]
    if f.get("sets"):
        lines += [
            "Through the service: the validation sets (chosen on, above) and the test sets "
            "(for the record: nothing is chosen from them):",
            "",
            *_table({k: v["metrics"] for k, v in f["sets"].items()}),
            "",
        ]
    if f.get("reliability"):
        lines += [
            "Reliability of `confidence` on the test sets (answers given):",
            "",
            "| confidence | answers | mean confidence | right |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['bin']} | {r['count']} | {r['confidence']} | {r['right']} |"
            for r in f["reliability"]
        ]
        lines.append("")
    lines += ["## Files", ""]
    lines += [
        f"- `{n}`: {v['bytes']} bytes, sha256 {v['sha256']}" for n, v in card["files"].items()
    ]
    return "\n".join(lines) + "\n"


def _reasked(validation: dict[str, Any]) -> list[str]:
    """How the validation follow-ups fared when asked again with the settings chosen."""
    changed = validation.get("followups_asked_again")
    if not changed:
        return []
    if changed == [0]:
        told = "every earlier answer stayed."
    else:
        counts = ", then ".join(map(str, changed))
        told = (
            f"the follow-ups read otherwise: {counts} (an earlier answer changed, or, once, a "
            "follow-up that does not refer back is read alone as the service reads it; the "
            "choice was made again after each"
        )
        told += (
            " change)."
            if changed[-1] == 0
            else "; the last choice stands on the earlier answers of the one before)."
        )
    return [
        "The validation follow-ups were asked again with the settings chosen, as the service "
        f"answers their earlier turns: {told}",
        "",
    ]


def _crossfitted(validation: dict[str, Any]) -> list[str]:
    """What the decider gains out of sample, when the card records it."""
    c = validation.get("crossfitted")
    if not c or "decider" not in c:
        return []
    return [
        f"Out of sample ({c['documents']} validation documents dealt into {c['folds']} folds, "
        "each decided by what was fitted on the others), minus the shortfall, mean of the "
        f"sets: the best margin alone {c['margin']['mean']} {json.dumps(c['margin']['sets'])}, "
        f"the decider {c['decider']['mean']} {json.dumps(c['decider']['sets'])}"
        + (
            f"; reading the next batch when unsure {c['further']['mean']} "
            f"{json.dumps(c['further']['sets'])} (share of questions reading it: "
            f"{json.dumps(c['further']['share'])})"
            if "mean" in c.get("further", {})
            else ""
        )
        + ".",
        "",
        *_curves(c.get("answer curve")),
    ]


def _curves(c: dict[str, Any] | None) -> list[str]:
    """How the answer's confidence curves did out of sample, when the card records it."""
    if not c:
        return []

    at, right = f"at {CONFIDENT}", f"right at {CONFIDENT}"  # the keys ``crossfit_curves`` writes

    def figures(way: str) -> str:
        sets = {k: f"{v[right]} of {v[at]}" if v[at] else "none" for k, v in c[way]["sets"].items()}
        return f"log loss {c[way]['log_loss']}, right at {CONFIDENT} or more {json.dumps(sets)}"

    return [
        "An answer's confidence out of sample, in the same folds: from the score that decided "
        f"(Platt), {figures('score')}; from the answer's inputs and that score, "
        f"{figures('inputs')}. The lower log loss is kept.",
        "",
    ]


def _objective(validation: dict[str, Any]) -> str:
    """What the choice maximised, when the card records it."""
    o = validation.get("objective")
    if not o:
        return ""
    t = o["targets"]
    return (
        f", chosen to come nearest the targets answer_hit >= {t['answer_hit']}, "
        f"false_abstain <= {t['false_abstain']} and abstain >= {t['abstain']} "
        f"(mean shortfall {-o['score']:.4f}, 0 when all hold)"
    )
