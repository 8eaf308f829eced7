"""/stats (owner; staff see a reduced view without money) and /export (owner): the numbers
first, then the charts, which are drawn in a worker thread so the bot keeps answering."""

from __future__ import annotations

import asyncio

from telegram import InputFile, Update
from telegram.constants import ChatAction

from bot.domain.insights import DEFAULT_DAYS, parse_days, stats_charts
from bot.domain.models import Actor, Refused, Role
from bot.domain.parsing import InvalidInput
from handlers.telegram.context import Context, for_owner, for_staff, refuse, reply

UPLOAD_TIMEOUT = 300  # seconds: an export of a large shop is tens of megabytes


@for_staff
async def stats(update: Update, context: Context, actor: Actor) -> None:
    """/stats [days]"""
    args = context.args or []
    language = context.language
    if len(args) > 1:
        await reply(update, context, language, "stats/usage")
        return
    try:
        days = parse_days(args[0]) if args else DEFAULT_DAYS
    except InvalidInput as invalid:
        await refuse(update, context, Refused(invalid.problem))
        return
    svc = context.services
    chat = update.effective_chat
    assert chat is not None
    await context.bot.send_chat_action(chat.id, ChatAction.TYPING)
    report = await svc.insights.report(days)
    await reply(
        update,
        context,
        language,
        "stats/report",
        report=report,
        full=actor.role is Role.OWNER,
        shop=svc.program.shop.name,
    )
    words = svc.messages.label_map(language, "chart_words")
    trends = await svc.insights.trends()
    pictures = await asyncio.to_thread(stats_charts, trends, report.quadrants, words)
    for title_key, picture in pictures:
        if picture is None:
            await reply(update, context, language, "stats/no_chart", title=words[title_key])
        else:
            await context.bot.send_photo(
                chat.id, photo=picture, caption=words[title_key], filename=f"{title_key}.png"
            )


@for_owner
async def export(update: Update, context: Context, actor: Actor) -> None:
    """/export: customers and ledger as CSV documents."""
    svc = context.services
    language = context.language
    chat = update.effective_chat
    assert chat is not None
    await context.bot.send_chat_action(chat.id, ChatAction.UPLOAD_DOCUMENT)
    async with svc.exports.files(actor) as files:
        for file in files:
            caption = svc.messages.render(
                language,
                "exports/caption",
                kind=file.kind,
                rows=file.rows,
                zipped=file.path.suffix == ".zip",
                delimiter=svc.exports.delimiter,
                currency=svc.program.shop.currency,
            )
            # Streamed from disk as it is uploaded: a ledger export can be tens of megabytes.
            with file.path.open("rb") as handle:
                await context.bot.send_document(
                    chat.id,
                    document=InputFile(handle, filename=file.path.name, read_file_handle=False),
                    caption=caption,
                    write_timeout=UPLOAD_TIMEOUT,
                    read_timeout=UPLOAD_TIMEOUT,
                )
