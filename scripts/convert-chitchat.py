#!/usr/bin/env python3
"""Convert `chitchat-dataset` 0.9.0 (BYU PCC Chit-Chat Challenge, MIT) into LoCoMo JSON.

Input: the package's wheel (`chitchat_dataset-0.9.0-py3-none-any.whl`) or a directory holding
`chitchat_dataset/dataset.json` (an unpacked wheel). Nothing is fetched here; see
`scripts/fetch-datasets.sh`.

What the package holds: `chitchat_dataset/dataset.json`, an object of 7,168 conversations
{id: {"messages": [[{text, timestamp, sender}, ...], ...]}}; each inner list is one turn (messages
a sender sent in a row), two senders per conversation. Real small talk between people; no
questions.

Two outputs (both deterministic):

1. `-o OUT.json`: the conversations as LoCoMo samples with no questions, `--per-sample`
   conversations per sample (default 100), one conversation per session in time order. The first
   sender of a conversation speaks as speaker_a. A turn's text is its messages joined by a space;
   empty turns are dropped. session_N_date_time is the first message's time. Use it as a
   transition corpus: nothing in it is evidence, so what a policy keeps of it is small talk kept.
   `--limit N` converts only the first N conversations (in id order).

2. `--distract BASE.json -o OUT.json`: BASE (any LoCoMo file, e.g. the converted cri dataset)
   with chit-chat conversations interleaved as extra sessions: after each of BASE's sessions,
   `--ratio` (default 1) chit-chat conversations, spoken by BASE's own two speakers and dated one
   minute apart after that session. Sessions and dia_ids are renumbered in the new order and every
   question's evidence is rewritten to the new ids, read as the loader (src/locomo.rs) reads it:
   lists ("D2:5; D2:6") part by part, ids with leading zeros ("D02:05") by their numbers. What
   BASE cannot resolve stays bad: a malformed part is kept as written, an unknown id becomes
   "D0:0", which no conversation has (never an id of the new numbering, which would point at
   another turn, perhaps a chit-chat one). The questions are BASE's: the extra sessions are
   realistic distractors that share everyday words with everything.

Usage: convert-chitchat.py WHEEL_OR_DIR -o OUT.json [--per-sample N] [--limit N]
       convert-chitchat.py WHEEL_OR_DIR --distract BASE.json -o OUT.json [--ratio R]
"""

import argparse
import datetime as dt
import json
import re
import sys
import zipfile
from pathlib import Path

MEMBER = "chitchat_dataset/dataset.json"
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
SPEAKERS = [("Sam", "Alex"), ("Jordan", "Casey"), ("Riley", "Morgan"), ("Taylor", "Jamie"),
            ("Drew", "Avery"), ("Robin", "Quinn")]
LOCOMO_DATE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*(am|pm)\s+on\s+(\d{1,2})\s+([A-Za-z]+),?\s+(\d{4})\s*$")


def fail(msg):
    print(f"convert-chitchat: error: {msg}", file=sys.stderr)
    sys.exit(1)


def load(source: Path):
    try:
        if source.is_dir():
            text = (source / MEMBER).read_text(encoding="utf-8")
        else:
            with zipfile.ZipFile(source) as z:
                text = z.read(MEMBER).decode("utf-8")
    except KeyError:
        fail(f"{source} has no {MEMBER}: is it chitchat-dataset 0.9.0?")
    except (OSError, zipfile.BadZipFile) as e:
        fail(f"cannot read {source}: {e}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        fail(f"{source}: malformed {MEMBER}: {e}")
    if not isinstance(data, dict):
        fail(f"{source}: {MEMBER} is not an object of conversations")
    return data


def parse_ts(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).replace(tzinfo=None)


def locomo_time(t: dt.datetime) -> str:
    hour = t.hour % 12 or 12
    half = "am" if t.hour < 12 else "pm"
    return f"{hour}:{t.minute:02d} {half} on {t.day} {MONTHS[t.month - 1]}, {t.year}"


def parse_locomo_time(s):
    m = LOCOMO_DATE.match(s or "")
    if not m:
        return None
    h, minute, half, day, month, year = m.groups()
    names = [n.lower() for n in MONTHS]
    month = month.lower()
    idx = next((i for i, n in enumerate(names) if n == month or (len(month) >= 3 and n.startswith(month))), None)
    if idx is None:
        return None
    hour = int(h) % 12 + (12 if half == "pm" else 0)
    try:
        return dt.datetime(int(year), idx + 1, int(day), hour, int(minute))
    except ValueError:
        return None


def conversation_turns(conv):
    """[(sender_index, text)] and the start time of one chit-chat conversation, or None."""
    turns, senders, start = [], [], None
    for group in conv.get("messages", []):
        texts = [m.get("text", "").strip() for m in group if isinstance(m, dict)]
        text = " ".join(t for t in texts if t)
        if not group or not text:
            continue
        sender = group[0].get("sender")
        if sender not in senders:
            senders.append(sender)
        if start is None and group[0].get("timestamp"):
            start = parse_ts(group[0]["timestamp"])
        turns.append((min(senders.index(sender), 1), text))
    if not turns or start is None:
        return None
    return turns, start


def sorted_conversations(data, limit=None):
    out = []
    for cid in sorted(data):
        parsed = conversation_turns(data[cid])
        if parsed:
            out.append((cid, *parsed))
        if limit is not None and len(out) >= limit:
            break
    return out


def corpus(data, per_sample, limit):
    convs = sorted_conversations(data, limit)
    samples = []
    for s, i in enumerate(range(0, len(convs), per_sample)):
        chunk = sorted(convs[i:i + per_sample], key=lambda c: (c[2], c[0]))
        a, b = SPEAKERS[s % len(SPEAKERS)]
        conversation = {"speaker_a": a, "speaker_b": b}
        for n, (_, turns, start) in enumerate(chunk, start=1):
            conversation[f"session_{n}_date_time"] = locomo_time(start)
            conversation[f"session_{n}"] = [
                {"speaker": (a, b)[who], "dia_id": f"D{n}:{t}", "text": text}
                for t, (who, text) in enumerate(turns, start=1)]
        samples.append({"sample_id": f"chitchat-{s + 1}", "conversation": conversation, "qa": []})
    return samples, len(convs)


def distract(data, base, ratio):
    convs = sorted_conversations(data)
    if not convs:
        fail("no usable chit-chat conversations")
    next_conv = 0
    out = []
    for sample in base:
        conv = sample.get("conversation")
        if not isinstance(conv, dict):
            fail(f"sample {sample.get('sample_id')!r} of the base file has no conversation object")
        a, b = conv.get("speaker_a", "A"), conv.get("speaker_b", "B")
        numbers = sorted(int(k[len("session_"):]) for k in conv
                         if re.fullmatch(r"session_\d+", k) and isinstance(conv[k], list))
        new = {"speaker_a": a, "speaker_b": b}
        renamed = {}  # dia_id as written -> new id
        by_number = {}  # (session, turn) of a well-formed dia_id -> new id
        n = 0
        for old in numbers:
            n += 1
            date = conv.get(f"session_{old}_date_time")
            if date is not None:
                new[f"session_{n}_date_time"] = date
            turns = []
            for t, turn in enumerate(conv[f"session_{old}"], start=1):
                turn = dict(turn)
                if "dia_id" in turn:
                    renamed.setdefault(str(turn["dia_id"]), f"D{n}:{t}")
                    key = dia_numbers(str(turn["dia_id"]))
                    if key is not None:
                        by_number.setdefault(key, f"D{n}:{t}")
                    turn["dia_id"] = f"D{n}:{t}"
                turns.append(turn)
            new[f"session_{n}"] = turns
            when = parse_locomo_time(date)
            for r in range(ratio):
                _, chat, _ = convs[next_conv % len(convs)]
                next_conv += 1
                n += 1
                if when is not None:
                    new[f"session_{n}_date_time"] = locomo_time(when + dt.timedelta(minutes=r + 1))
                new[f"session_{n}"] = [
                    {"speaker": (a, b)[who], "dia_id": f"D{n}:{t}", "text": text}
                    for t, (who, text) in enumerate(chat, start=1)]
        qa = []
        for q in sample.get("qa", []) or []:
            q = dict(q)
            ev = q.get("evidence")
            if isinstance(ev, list):
                q["evidence"] = [rename_evidence(e, renamed, by_number) for e in ev]
            elif ev is not None:
                # A single id (the loader reads it as a list of one).
                q["evidence"] = rename_evidence(ev, renamed, by_number)
            qa.append(q)
        out.append({**sample, "sample_id": f"{sample.get('sample_id', 'sample')}+chitchat",
                    "conversation": new, "qa": qa})
    return out, next_conv


def dia_numbers(part):
    """(session, turn) of a dia_id such as "D2:5", "D02:05" or "D:2:5", as the loader parses it;
    else None."""
    m = re.fullmatch(r"D:?(\d+):(\d+)", part.strip())
    return (int(m[1]), int(m[2])) if m else None


def rename_evidence(e, renamed, by_number):
    """One evidence entry of BASE in the new numbering (see the module's doc).

    >>> renamed = {"D1:1": "D1:1", "D2:1": "D3:1", "D2:2": "D3:2"}
    >>> by_number = {(1, 1): "D1:1", (2, 1): "D3:1", (2, 2): "D3:2"}
    >>> [rename_evidence(e, renamed, by_number) for e in ["D2:1", "D2:1; D2:2", "D02:02"]]
    ['D3:1', 'D3:1; D3:2', 'D3:2']
    >>> [rename_evidence(e, renamed, by_number) for e in ["D2:50", "D2:1, D9:9", "garbage", 7]]
    ['D0:0', 'D3:1; D0:0', 'garbage', 7]
    >>> [rename_evidence(e, renamed, by_number) for e in ["D2:2 D1:1", "D:2:1", "D2:1;"]]
    ['D3:2; D1:1', 'D3:1', 'D3:1']
    >>> rename_evidence(7, {"7": "D5:1"}, {})
    'D5:1'
    """
    if isinstance(e, (int, float)) and not isinstance(e, bool):
        # A number names a turn whose dia_id is that number's text (as the loader reads it).
        return renamed.get(str(e), e)
    if not isinstance(e, str):
        return e
    if e in renamed:
        return renamed[e]
    out = []
    for part in re.split(r"[;,\s]+", e):
        if not part:
            continue
        key = dia_numbers(part)
        if part in renamed:
            out.append(renamed[part])
        elif key is None:
            out.append(part)
        else:
            out.append(by_number.get(key, "D0:0"))
    return "; ".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", type=Path, help="the chitchat-dataset 0.9.0 wheel or an unpacked copy")
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--per-sample", type=int, default=100)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--distract", type=Path, default=None, metavar="BASE.json")
    ap.add_argument("--ratio", type=int, default=1)
    args = ap.parse_args()
    if not args.source.exists():
        fail(f"{args.source} does not exist (run scripts/fetch-datasets.sh)")
    if args.per_sample < 1 or args.ratio < 0 or (args.limit is not None and args.limit < 1):
        fail("--per-sample and --limit must be at least 1, --ratio at least 0")
    data = load(args.source)
    if args.distract is None:
        samples, used = corpus(data, args.per_sample, args.limit)
        what = f"{used} conversations in {len(samples)} samples"
    else:
        try:
            base = json.loads(args.distract.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            fail(f"cannot read the base dataset {args.distract}: {e}")
        if not isinstance(base, list):
            fail(f"{args.distract} is not a list of LoCoMo conversations")
        samples, used = distract(data, base, args.ratio)
        what = f"{args.distract.name} with {used} chit-chat sessions interleaved"
    turns = sum(len(v) for s in samples for k, v in s["conversation"].items()
                if re.fullmatch(r"session_\d+", k))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(samples, ensure_ascii=False), encoding="utf-8")
    print(f"convert-chitchat: {what}, {turns} turns -> {args.output}")


if __name__ == "__main__":
    main()
