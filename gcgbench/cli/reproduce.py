"""Re-measure a paper's number from its reproduction card (leaderboards/cards/*.yaml, docs/reproduction.md).

`gcgbench reproduce --list` lists the cards; `gcgbench reproduce CARD --weights DIR --data-root D` checks that
every checkpoint file of the card exists under DIR (exit 2 on the first missing one, before any model loads),
runs the card's backend, model args and protocols through the same path as `gcgbench run`, then prints
reported vs measured with the 95% interval and PASS/FAIL per metric (exit 1 on any FAIL).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from gcgbench.api.errors import InputError
from gcgbench.cli import options as opt
from gcgbench.cli.render import format_value, is_points_metric
from gcgbench.leaderboard.cards import DEFAULT_CARDS, Card, card_path, load_card, load_cards
from gcgbench.leaderboard.reproduce import Row, check_weights, compare, verdict_payload, weights_folder
from gcgbench.cli.run import _cache_folder, execute


def reproduce(
    card: Optional[str] = typer.Argument(None, help="Card name (see --list) or path to a card YAML file."),
    list_cards: bool = typer.Option(False, "--list", help="List the reproduction cards and exit."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Folder holding the card's checkpoints "
                                           "(optional for cards of the shipped tiny models)."),
    data_root: Optional[Path] = opt.DataRoot,
    data_config: Optional[Path] = opt.DataConfig,
    output: Optional[Path] = opt.Output,
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Requests per backend call (default: "
                                             "the card's batch_size)."),
    device: str = opt.Device,
    seed: int = opt.Seed,
    bootstrap: int = opt.Bootstrap,
    limit: Optional[int] = typer.Option(None, "--limit", help="Smoke test on the first N docs of each task "
                                        "(the verdict then says nothing about the paper's number)."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Generation cache folder (default: ~/.cache/gcgbench)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the generation cache."),
    cards: Path = typer.Option(DEFAULT_CARDS, "--cards", help="Folder of reproduction cards."),
) -> None:
    if list_cards:
        _list(cards)
        return
    if card is None:
        raise InputError("reproduce", None, "name a card (gcgbench reproduce --list shows them)")
    chosen = load_card(card_path(card, cards))
    console = Console(stderr=True)
    folder = weights_folder(chosen, weights)
    for line in check_weights(chosen, folder):
        console.print(line)
    if chosen.data == "real" and data_root is None and data_config is None:
        raise InputError("--data-root", None, f"card {chosen.name} reproduces numbers on the real data: give the "
                                              "folder laid out like GLaMM's data/ (docs/reproduction.md)")
    if chosen.data == "sample" and (data_root is not None or data_config is not None):
        raise InputError("--data-root", str(data_root or data_config),
                         f"card {chosen.name} is measured on the bundled sample; drop --data-root/--data-config "
                         "(or unset GCGBENCH_DATA)")
    if batch_size is not None and batch_size < 1:
        raise InputError("--batch-size", str(batch_size), "must be a positive integer")
    if limit is not None:
        console.print(f"warning: --limit {limit}: a smoke test; PASS/FAIL below does not speak for the paper's number")

    output = output or Path("out") / f"reproduce-{chosen.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    args = chosen.resolved_model_args(folder)
    console.print(f"card {chosen.name}: {chosen.backend} --model-args {','.join(f'{k}={v}' for k, v in args.items())}")
    results = execute(chosen.backend, ",".join(f"{k}={v}" for k, v in args.items()), ",".join(chosen.tasks),
                      data_root=data_root, data_config=data_config, limit=limit, output=output,
                      batch_size=batch_size or chosen.batch_size, device=device, seed=seed,
                      text_model=chosen.resolved_text_model(folder), bootstrap=bootstrap,
                      protocol=chosen.scoring_protocol, cache_folder=_cache_folder(cache, no_cache), score=True)
    if results is None:      # a torchrun rank other than 0: rank 0 prints the verdict
        return
    rows = compare(chosen, results)
    _print_rows(chosen, rows, results)
    payload = verdict_payload(chosen, rows, output / "results.json", limit)
    (output / "reproduction.json").write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    console.print(f"verdict: {output / 'reproduction.json'}")
    if not payload["passed"]:
        raise typer.Exit(code=1)


def _list(directory: Path) -> None:
    table = Table(title=f"reproduction cards ({directory})")
    for column in ("card", "reproduces", "backend", "tasks", "generation / scoring protocol", "weights"):
        table.add_column(column)
    for card in load_cards(directory):
        table.add_row(card.name, f"{card.title}\n{card.leaderboard['model']} ({card.leaderboard['source']})",
                      card.backend, " ".join(card.tasks),
                      f"{card.generation_protocol or 'default'} / {card.scoring_protocol or 'default'}",
                      "shipped" if card.weights == "package" else "--weights")
    from gcgbench.cli.leaderboard import wide_console

    wide_console().print(table)


def _print_rows(card: Card, rows: list[Row], results: dict) -> None:
    table = Table(title=f"{card.name}: reported ({card.leaderboard['model']}, {card.leaderboard['source']}) "
                        f"vs measured; fractions ×100")
    for column in ("task", "metric", "reported", "measured", "95% interval", "Δ", "tolerance", "verdict"):
        table.add_column(column, justify="left" if column in ("task", "metric", "verdict") else "right")
    for row in rows:
        points = is_points_metric(row.metric, results.get("metric_config", {}).get(row.task, {}))
        show = (lambda value: format_value(value, points) if value is not None else "n/a")
        interval = f"{show(row.low)} – {show(row.high)}" if row.low is not None else ""
        delta = "" if row.delta is None else (f"{row.delta:+.1f}" if points else f"{100 * row.delta:+.1f}")
        verdict = "PASS" if row.passed else f"FAIL {row.reason}"
        table.add_row(row.task, row.metric, show(row.reported), show(row.measured), interval, delta,
                      f"{row.tolerance:g}" if points else f"{100 * row.tolerance:.1f}", verdict)
    from gcgbench.cli.leaderboard import wide_console

    wide_console().print(table)
    failed = sum(not row.passed for row in rows)
    wide_console().print(f"{card.name}: {len(rows) - failed} PASS, {failed} FAIL")
