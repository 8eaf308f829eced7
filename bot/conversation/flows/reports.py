"""/stats (the team; staff see a reduced view without money) and /export (the owner): the
numbers first, then the charts, drawn in the side process so the bot keeps answering; the
export's files are sent from disk while they exist."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bot.conversation.replies import Document, Reply, picture
from bot.conversation.router import Router
from bot.conversation.turn import Turn
from bot.domain.exports import ExportWording
from bot.domain.insights import DEFAULT_DAYS, parse_days, stats_charts
from bot.domain.models import Refused
from bot.domain.parsing import InvalidInput
from bot.domain.permissions import MAY, Action

router = Router()


@router.command("stats", needs=Action.STATS)
async def stats(turn: Turn) -> AsyncIterator[Reply]:
    """/stats [days]"""
    if len(turn.args) > 1:
        yield turn.reply("stats/usage")
        return
    try:
        days = parse_days(turn.args[0]) if turn.args else DEFAULT_DAYS
    except InvalidInput as invalid:
        yield turn.refused(Refused(invalid.problem))
        return
    services = turn.services
    services.side.prepare("bot.charts")  # matplotlib loads there while the numbers are read
    report = await services.insights.report(days)
    yield turn.reply(
        "stats/report",
        report=report,
        full=turn.actor.role in MAY[Action.EXPORT],  # money, as the owner sees it
        shop=services.program.shop.name,
    )
    words = services.messages.label_map(turn.language, "chart_words")
    trends = await services.insights.trends()
    pictures = await services.side.run(stats_charts, trends, report.quadrants, words)
    for title_key, image in pictures:
        if image is None:
            yield turn.reply("stats/no_chart", title=words[title_key])
        else:
            yield Reply(
                "stats/chart",
                turn.language,
                {"title": words[title_key]},
                photo=picture(f"{title_key}.png", image),
            )


@router.command("export", needs=Action.EXPORT)
async def export(turn: Turn) -> AsyncIterator[Reply]:
    """The workbook, then customers and ledger as CSV, each sent before the next is read."""
    services = turn.services
    language = turn.language
    labels = services.messages.label_map
    program = services.program
    wording = ExportWording(
        words=labels(language, "export_words"),
        reasons=labels(language, "reasons"),
        tiers={tier.key: tier.name.get(language) for tier in program.tiers},
        rewards={reward.key: reward.name.get(language) for reward in program.rewards},
        quadrants={
            key: labels(language, "chart_words")[key]
            for key in ("apostle", "mercenary", "hostage", "terrorist")
        },
    )
    async with services.exports.files(turn.actor, wording) as files:
        for file in files:
            yield Reply(
                "exports/caption",
                language,
                {
                    "kind": file.kind,
                    "rows": file.rows,
                    "sheets": file.sheets,
                    "ledger_left_out": file.ledger_left_out,
                    "zipped": file.path.suffix == ".zip",
                    "delimiter": services.exports.delimiter,
                    "currency": program.shop.currency,
                },
                document=Document(file.path.name, path=str(file.path)),
            )
