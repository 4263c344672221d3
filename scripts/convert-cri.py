#!/usr/bin/env python3
"""Convert the `cri-benchmark` 0.1.2 dataset `persona-1-base` into the LoCoMo JSON format.

Input: the package's wheel (`cri_benchmark-0.1.2-py3-none-any.whl`, MIT) or a directory holding
`cri/datasets/persona-1-base/` (an unpacked wheel). Nothing is fetched here; see
`scripts/fetch-datasets.sh`.

What the package holds (`cri/datasets/persona-1-base/`):
  conversations.jsonl  2,862 messages {message_id, role: user|assistant, content, timestamp,
                       session_id, day} over 665 sessions and 289 simulated days; message ids run
                       1..2862 in order.
  ground_truth.json    final_profile, changes, signal_examples, conflicts, temporal_facts,
                       query_relevance_pairs, noise_examples.
  metadata.json        persona_name ("Marcus Rivera") and counts.

Output: one LoCoMo conversation (sample_id "cri-persona-1-base"):
  - speaker_a is the persona's first name (the user), speaker_b is "Assistant".
  - Sessions in order of first appearance of their session_id; session_N_date_time is the time of
    the session's first message in LoCoMo's form ("9:12 am on 15 May, 2025"); turn i of session N
    has dia_id "DN:i" (1-based), text = the message content.

Questions, derived only from the ground-truth parts that name messages (evidence = those
messages' dia_ids); everything else is left out because it names no message:
  1. `changes` (fact, old_value, new_value, query_topic, changed_around_msg, key_messages):
     a. "How did <first>'s <topic> change?"  answer "from <old> to <new>", evidence = all
        key_messages; category 1 (multi-hop) when they lie in two or more sessions, else 4.
        <topic> is query_topic without a leading "current ".
     b. "When did <first>'s <topic> change to <new>?"  answer = the date of changed_around_msg
        ("16 June, 2025"), evidence = [changed_around_msg]; category 2 (temporal).
  2. `conflicts` (topic, conflicting_statements, introduced_at_messages, correct_resolution):
     "How has <first>'s view on <topic> changed over time?"  answer = correct_resolution,
     evidence = introduced_at_messages (checked: each statement, as truncated in the ground truth,
     must begin its message); category 1.
  3. `signal_examples` (text, target_fact): the message whose content begins with `text` (the
     ground truth truncates long texts) is the evidence; a text that begins no message, or more
     than one, is skipped and counted (2 of 20 in 0.1.2: "My mom is Puerto Rican" and
     "meditation saved me" appear in no message). The question is built from target_fact:
       "<topic>: <A> → <B>"  →  "What did <first> say about the <topic> from <A> to <B>?"
                                (<topic> is e.g. "occupation change"; answer <B>)
       "<topic>: <value>"           →  "What has <first> said about his <topic>?"  (answer <value>)
       anything else                →  "What did <first> say about: <target_fact>?"
     category 4 (single-hop).
  `temporal_facts`, `final_profile` and `query_relevance_pairs` name no messages and are not
  converted; `noise_examples` are examples of small talk, not questions.

Usage: convert-cri.py WHEEL_OR_DIR -o OUT.json
"""

import argparse
import datetime as dt
import json
import sys
import zipfile
from pathlib import Path

DATASET = "cri/datasets/persona-1-base"
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]


def fail(msg):
    print(f"convert-cri: error: {msg}", file=sys.stderr)
    sys.exit(1)


def read_member(source: Path, name: str) -> str:
    """Text of DATASET/name from a wheel or an unpacked directory."""
    try:
        if source.is_dir():
            return (source / DATASET / name).read_text(encoding="utf-8")
        with zipfile.ZipFile(source) as z:
            return z.read(f"{DATASET}/{name}").decode("utf-8")
    except KeyError:
        fail(f"{source} has no {DATASET}/{name}: is it cri-benchmark 0.1.2?")
    except (OSError, zipfile.BadZipFile) as e:
        fail(f"cannot read {source}: {e}")


def locomo_time(ts: str) -> str:
    t = dt.datetime.fromisoformat(ts)
    hour = t.hour % 12 or 12
    half = "am" if t.hour < 12 else "pm"
    return f"{hour}:{t.minute:02d} {half} on {t.day} {MONTHS[t.month - 1]}, {t.year}"


def day_month_year(ts: str) -> str:
    t = dt.datetime.fromisoformat(ts)
    return f"{t.day} {MONTHS[t.month - 1]}, {t.year}"


def convert(source: Path):
    try:
        messages = [json.loads(line) for line in read_member(source, "conversations.jsonl").splitlines()
                    if line.strip()]
        truth = json.loads(read_member(source, "ground_truth.json"))
        meta = json.loads(read_member(source, "metadata.json"))
    except json.JSONDecodeError as e:
        fail(f"{source}: malformed JSON in the dataset: {e}")
    first = (meta.get("persona_name") or "User").split()[0]
    assistant = "Assistant"

    sessions = {}  # session_id -> list of messages, in order of first appearance
    for m in sorted(messages, key=lambda m: m["message_id"]):
        sessions.setdefault(m["session_id"], []).append(m)
    conversation = {"speaker_a": first, "speaker_b": assistant}
    dia = {}  # message_id -> (dia_id, session number, message)
    for n, (sid, msgs) in enumerate(sessions.items(), start=1):
        conversation[f"session_{n}_date_time"] = locomo_time(msgs[0]["timestamp"])
        turns = []
        for i, m in enumerate(msgs, start=1):
            dia_id = f"D{n}:{i}"
            dia[m["message_id"]] = (dia_id, n, m)
            speaker = first if m["role"] == "user" else assistant
            turns.append({"speaker": speaker, "dia_id": dia_id, "text": m["content"]})
        conversation[f"session_{n}"] = turns

    qa = []
    skipped = []

    def evidence(ids, why):
        missing = [i for i in ids if i not in dia]
        if missing:
            skipped.append(f"{why}: message ids {missing} not in the conversation")
            return None
        return [dia[i][0] for i in ids]

    for c in truth.get("changes", []):
        topic = c["query_topic"].removeprefix("current ")
        ev = evidence(c["key_messages"], f"change {c['fact']}")
        if ev:
            sessions_spanned = {dia[i][1] for i in c["key_messages"]}
            qa.append({"question": f"How did {first}'s {topic} change?",
                       "answer": f"from {c['old_value']} to {c['new_value']}",
                       "evidence": ev, "category": 1 if len(sessions_spanned) > 1 else 4})
        at = c["changed_around_msg"]
        ev = evidence([at], f"change {c['fact']} (date)")
        if ev:
            qa.append({"question": f"When did {first}'s {topic} change to {c['new_value']}?",
                       "answer": day_month_year(dia[at][2]["timestamp"]),
                       "evidence": ev, "category": 2})

    for c in truth.get("conflicts", []):
        ids = c["introduced_at_messages"]
        ev = evidence(ids, c["conflict_id"])
        if not ev:
            continue
        mismatched = [i for s, i in zip(c["conflicting_statements"], ids)
                      if not dia[i][2]["content"].startswith(s.rstrip(". …")[:150])]
        if mismatched:
            skipped.append(f"{c['conflict_id']}: statements do not begin messages {mismatched}")
            continue
        qa.append({"question": f"How has {first}'s view on {c['topic']} changed over time?",
                   "answer": c["correct_resolution"], "evidence": ev, "category": 1})

    for s in truth.get("signal_examples", []):
        text, fact = s["text"], s["target_fact"]
        hits = [m["message_id"] for m in messages if m["content"].startswith(text)]
        if len(hits) != 1:
            skipped.append(f"signal {text[:40]!r}: begins {len(hits)} messages")
            continue
        if ":" in fact and "→" in fact:
            topic, change = fact.split(":", 1)
            old, new = (p.strip() for p in change.split("→", 1))
            topic = topic.strip()
            question = f"What did {first} say about the {topic} from {old} to {new}?"
            answer = new
        elif ":" in fact:
            topic, value = (p.strip() for p in fact.split(":", 1))
            question = f"What has {first} said about his {topic}?"
            answer = value
        else:
            question = f"What did {first} say about: {fact}?"
            answer = fact
        qa.append({"question": question, "answer": answer,
                   "evidence": [dia[hits[0]][0]], "category": 4})

    sample = {"sample_id": f"cri-{meta.get('dataset_id', 'persona-1-base')}",
              "conversation": conversation, "qa": qa}
    return [sample], skipped, len(messages), len(sessions)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", type=Path, help="the cri-benchmark 0.1.2 wheel or an unpacked copy")
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args()
    if not args.source.exists():
        fail(f"{args.source} does not exist (run scripts/fetch-datasets.sh)")
    data, skipped, n_messages, n_sessions = convert(args.source)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    n_q = len(data[0]["qa"])
    print(f"convert-cri: {n_messages} messages, {n_sessions} sessions, {n_q} questions -> "
          f"{args.output}")
    for s in skipped:
        print(f"convert-cri: skipped {s}")


if __name__ == "__main__":
    main()
