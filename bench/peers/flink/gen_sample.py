#!/usr/bin/env python3
"""Writes a small Nexmark event file in FORMAT.md's JSON-lines layout, for testing these scripts.

This is not corestrom's generator. It follows the structure of SPEC.md §2 exactly (event ids,
the 1:3:46 person/auction/bid cycle, entity ids, hot sellers/bidders/auctions, timestamps from
event numbers, splits of one timeline into `--generators` disjoint id ranges) and the random
fields only approximately (seeded Python `random`, not Java's RNGs).

    gen_sample.py --events 200000 --out sample.jsonl
    gen_sample.py --events 200000 --generators 2 --out sample-p2/   # one time-ordered file per generator

With several generators, `--out` is a directory and generator i writes `events-<i>.jsonl`;
together they hold `--events` events (the last generator takes the remainder), all on the same
event-time timeline, as the Flink source's splits would be.
"""

import argparse
import datetime
import json
import os
import random

PERSON_PROPORTION, AUCTION_PROPORTION, TOTAL_PROPORTION = 1, 3, 50
FIRST_PERSON_ID, FIRST_AUCTION_ID, FIRST_CATEGORY_ID = 1000, 1000, 10
NUM_CATEGORIES = 5
NUM_ACTIVE_PEOPLE, NUM_IN_FLIGHT_AUCTIONS = 1000, 100
PERSON_ID_LEAD, AUCTION_ID_LEAD = 10, 10
HOT_SELLER_RATIO, HOT_AUCTION_RATIO, HOT_BIDDER_RATIO = 4, 2, 4
HOT_BATCH = 100
AVG_SIZE = {"person": 200, "auction": 500, "bid": 100}

FIRST_NAMES = ["Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah",
               "Deiter", "Walter"]
LAST_NAMES = ["Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones",
              "Noris"]
CITIES = ["Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond",
          "Seattle", "Kent", "Cheyenne"]
STATES = ["AZ", "CA", "ID", "OR", "WA", "WY"]
HOT_CHANNELS = ["Google", "Facebook", "Baidu", "Apple"]


def last_person_base0(eid):
    epoch, off = divmod(eid, TOTAL_PROPORTION)
    return epoch * PERSON_PROPORTION + min(off, PERSON_PROPORTION - 1)


def last_auction_base0(eid):
    epoch, off = divmod(eid, TOTAL_PROPORTION)
    if off < PERSON_PROPORTION:
        return (epoch - 1) * AUCTION_PROPORTION + AUCTION_PROPORTION - 1
    if off >= PERSON_PROPORTION + AUCTION_PROPORTION:
        return epoch * AUCTION_PROPORTION + AUCTION_PROPORTION - 1
    return epoch * AUCTION_PROPORTION + off - PERSON_PROPORTION


class Fields:
    """Random field values (approximate distributions of SPEC.md §2.6-2.8)."""

    def __init__(self, rng):
        self.rng = rng
        self.pool = "".join(chr(ord("a") + rng.randrange(26)) for _ in range(1 << 16))
        self.hot_urls = [self.url() for _ in HOT_CHANNELS]
        self.channels = []
        for i in range(10000):
            url = self.url()
            if rng.randrange(10) > 0:
                rev = int(format(i & 0xFFFFFFFF, "032b")[::-1], 2)
                rev = rev - (1 << 32) if rev >= (1 << 31) else rev
                url += "&channel_id=" + str(abs(rev) if rev != -(1 << 31) else rev)
            self.channels.append(("channel-%d" % i, url))

    def string(self, max_len, pad=" "):
        n = 3 + self.rng.randrange(max_len - 3)
        chars = [pad if self.rng.randrange(13) == 0 else chr(ord("a") + self.rng.randrange(26))
                 for _ in range(n)]
        s = "".join(chars)
        return s.strip() if pad == " " else s

    def url(self):
        parts = [self.string(5, "_") for _ in range(3)]
        return "https://www.nexmark.com/%s/%s/%s/item.htm?query=1" % tuple(parts)

    def price(self):
        return int(10 ** (self.rng.random() * 6) * 100 + 0.5)

    def extra(self, cur, avg):
        if cur > avg:
            return ""
        target = avg - cur
        delta = int(target * 0.2 + 0.5)
        size = target - delta + (0 if delta == 0 else self.rng.randrange(2 * delta))
        off = self.rng.randrange(len(self.pool) - size)
        return self.pool[off:off + size]

    def recent_person(self, eid):
        num_people = last_person_base0(eid) + 1
        active = min(num_people, NUM_ACTIVE_PEOPLE)
        return num_people - active + self.rng.randrange(active + PERSON_ID_LEAD)

    def in_flight_auction(self, eid):
        max_a = last_auction_base0(eid)
        min_a = max(max_a - NUM_IN_FLIGHT_AUCTIONS, 0)
        return min_a + self.rng.randrange(max_a - min_a + 1 + AUCTION_ID_LEAD)


def fmt_ts(ms):
    t = datetime.datetime(1970, 1, 1) + datetime.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (ms % 1000)


def make_event(f, eid, ts_of, num):
    rng = f.rng
    t = ts_of(num)
    kind = eid % TOTAL_PROPORTION
    if kind < PERSON_PROPORTION:
        name = rng.choice(FIRST_NAMES) + " " + rng.choice(LAST_NAMES)
        email = f.string(7) + "@" + f.string(5) + ".com"
        card = " ".join("%04d" % rng.randrange(10000) for _ in range(4))
        city, state = rng.choice(CITIES), rng.choice(STATES)
        cur = 8 + len(name) + len(email) + len(card) + len(city) + len(state)
        person = {"id": last_person_base0(eid) + FIRST_PERSON_ID, "name": name,
                  "emailAddress": email, "creditCard": card, "city": city, "state": state,
                  "dateTime": fmt_ts(t), "extra": f.extra(cur, AVG_SIZE["person"])}
        return {"event_type": 0, "person": person}
    if kind < PERSON_PROPORTION + AUCTION_PROPORTION:
        if rng.randrange(HOT_SELLER_RATIO) > 0:
            seller = (last_person_base0(eid) // HOT_BATCH) * HOT_BATCH
        else:
            seller = f.recent_person(eid)
        category = FIRST_CATEGORY_ID + rng.randrange(NUM_CATEGORIES)
        initial = f.price()
        ahead = NUM_IN_FLIGHT_AUCTIONS * TOTAL_PROPORTION // AUCTION_PROPORTION
        horizon = ts_of(num + ahead) - t
        expires = t + 1 + rng.randrange(max(2 * horizon, 1))
        item, desc = f.string(20), f.string(100)
        reserve = initial + f.price()
        cur = 8 + len(item) + len(desc) + 5 * 8
        auction = {"id": last_auction_base0(eid) + FIRST_AUCTION_ID, "itemName": item,
                   "description": desc, "initialBid": initial, "reserve": reserve,
                   "dateTime": fmt_ts(t), "expires": fmt_ts(expires),
                   "seller": seller + FIRST_PERSON_ID, "category": category,
                   "extra": f.extra(cur, AVG_SIZE["auction"])}
        return {"event_type": 1, "auction": auction}
    if rng.randrange(HOT_AUCTION_RATIO) > 0:
        auction = (last_auction_base0(eid) // HOT_BATCH) * HOT_BATCH
    else:
        auction = f.in_flight_auction(eid)
    if rng.randrange(HOT_BIDDER_RATIO) > 0:
        bidder = (last_person_base0(eid) // HOT_BATCH) * HOT_BATCH + 1
    else:
        bidder = f.recent_person(eid)
    price = f.price()
    if rng.randrange(2) > 0:
        j = rng.randrange(len(HOT_CHANNELS))
        channel, url = HOT_CHANNELS[j], f.hot_urls[j]
    else:
        channel, url = f.channels[rng.randrange(len(f.channels))]
    # The Flink generator adds the person offset to the bidder twice (SPEC.md §2.9).
    bid = {"auction": auction + FIRST_AUCTION_ID, "bidder": bidder + 2 * FIRST_PERSON_ID,
           "price": price, "channel": channel, "url": url, "dateTime": fmt_ts(t),
           "extra": f.extra(32, AVG_SIZE["bid"])}
    return {"event_type": 2, "bid": bid}


def write_generator(path, f, first_event_id, count, ts_of):
    with open(path, "w", encoding="utf-8") as out:
        for k in range(count):
            num = 1 + k  # firstEventNumber = 1, no out-of-order groups
            event = make_event(f, first_event_id + num, ts_of, num)
            out.write(json.dumps(event, separators=(",", ":")) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, required=True, help="total events over all generators")
    ap.add_argument("--generators", type=int, default=1)
    ap.add_argument("--rate", type=float, default=1000.0,
                    help="events per second of event time, all generators together (default "
                         "1000, so 200k events span 200 s and windows of 10 s fire repeatedly)")
    ap.add_argument("--base-time", default="2015-07-15 00:00:00",
                    help="UTC time of event number 0")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    assert args.events > 0 and args.generators > 0

    base = datetime.datetime.strptime(args.base_time, "%Y-%m-%d %H:%M:%S")
    base_ms = int((base - datetime.datetime(1970, 1, 1)).total_seconds() * 1000)
    delay_us = 1_000_000.0 / args.rate * args.generators

    def ts_of(num):
        return base_ms + int(num * delay_us) // 1000

    per_gen = args.events // args.generators
    if args.generators == 1:
        targets = [args.out]
    else:
        os.makedirs(args.out, exist_ok=True)
        targets = [os.path.join(args.out, "events-%d.jsonl" % i) for i in range(args.generators)]
    for i, path in enumerate(targets):
        count = per_gen + (args.events - per_gen * args.generators if i == len(targets) - 1 else 0)
        f = Fields(random.Random(args.seed * 1000 + i))
        write_generator(path, f, 1 + i * per_gen, count, ts_of)
        print("wrote %s: %d events" % (path, count))


if __name__ == "__main__":
    main()
