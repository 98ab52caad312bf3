"""Writes the example corpus: a small invented encyclopedia and questions about it.

``python -m examples.rag.make_corpus`` (re)writes ``examples/rag/corpus/`` and
``examples/rag/questions.jsonl``; ``--out DIR`` writes them elsewhere, ``--check``
only reports whether the committed files are what this script makes. Everything is
drawn from one seeded random generator, so the output is the same on every run and
every machine.

The encyclopedia describes the Vantic Isles, an archipelago that does not exist: islands,
the towns on them, the people who founded the towns and charted the islands, rivers and
festivals. All names are made of invented syllables and all facts are drawn at random, so
no model can know them beforehand: a question can only be answered from a passage that
states the fact. Facts agree across articles (a town's founder is born before the
founding, in a town that already stood; an island's capital is one of its towns), and a
few towns have near-twin names on other islands, so that retrieval has to tell them
apart.

Layout (about 360 passages after ``sigforge index`` with the default chunking):

* ``corpus/islands.md`` -- one ``##`` section per island (area, sea, highest peak,
  capital, who charted it), each with a ``###`` section on its history;
* ``corpus/towns/<island>.md`` -- per town an overview, a history and a landmarks
  section (population, trade, founding year and founder, landmark, festival);
* ``corpus/people.md`` -- per person a life and a work section (birth, profession,
  best-known work, towns founded, islands charted, death);
* ``corpus/rivers.md`` -- length, source and mouth of each river;
* ``corpus/festivals.jsonl`` -- one passage per festival (town, month, occasion), with
  ``title`` and ``kind`` metadata.

``questions.jsonl`` holds one question per line: ``id``, ``question``, ``answer`` (the
gold answer, or ``I don't know`` for questions about things the encyclopedia does not
mention), ``entity`` (what the question is about) and ``split`` (``train`` for every
fourth question, else ``dev``).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

SEED = 2026
HERE = Path(__file__).resolve().parent
ABSTAIN = "I don't know"
_DASH = "\u2013"  # an en dash, as between years in print

_ONSETS = ["b", "br", "d", "dr", "f", "g", "gr", "h", "k", "kr", "l", "m", "n", "p", "r", "s",
           "st", "t", "th", "tr", "v", "w", "z", "sk", "ost", "el", "and", "or"]
_SIMPLE_ONSETS = ["b", "d", "g", "k", "l", "m", "n", "r", "s", "t", "v"]
_VOWELS = ["a", "e", "i", "o", "u", "ae", "ei", "ou", "y"]
_CODAS = ["", "n", "r", "l", "s", "th", "nd", "rk", "st", "m", "lt", "rn", "sk", "v"]
_TOWN_ENDS = ["holt", "wick", "by", "stead", "mouth", "ford", "haven", "ness", "more", "dal"]
_SEAS = ["the Vantic Sea", "the Sea of Orm", "the Grey Strait"]
_TRADES = ["salt", "amber", "timber", "wool", "glass", "herring", "copper", "tea", "indigo",
           "rope", "pottery", "cheese", "sailcloth", "whale oil", "slate", "honey"]
_PROFESSIONS = ["shipwright", "cartographer", "astronomer", "poet", "composer", "engineer",
                "botanist", "physician", "glassblower", "lawgiver", "merchant", "architect"]
_ADJECTIVES = ["Copper", "Drowned", "Salt", "Amber", "Silent", "Crooked", "Lantern", "Iron",
               "Whistling", "Painted", "Sunken", "Weeping", "Golden", "Hollow", "Red", "Tidal"]
_THINGS = ["Bell Tower", "Chapel", "Market Hall", "Lighthouse", "Bridge", "Gate", "Library",
           "Fountain", "Observatory", "Granary", "Quay", "Mill"]
_WORKS = ["atlas", "almanac", "treatise on tides", "book of hours", "star chart", "hymnal",
          "herbal", "canal plan", "compass rose", "code of harbour law", "sonnet cycle",
          "tide table"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]
_OCCASIONS = ["the first herring catch", "the end of the salt harvest", "the return of the fleet",
              "the longest night", "the spring tides", "the founding of the town",
              "the first frost", "the blessing of the boats", "the amber harvest",
              "the opening of the passes"]
_FESTIVAL_NOUNS = ["Lantern", "Net", "Salt", "Bell", "Tide", "Ember", "Harvest", "Kite",
                   "Barrel", "Ribbon"]
_FIRST_NAMES = ["Edda", "Ilsa", "Tomas", "Marek", "Ansel", "Brit", "Corvin", "Dagny", "Elof",
                "Frida", "Gorm", "Helka", "Ivo", "Jorun", "Kasimir", "Liv", "Mattis", "Nora",
                "Osk", "Petra", "Rune", "Sigrun", "Tarje", "Ulva", "Vidar", "Wenna", "Yrsa",
                "Aldo", "Berit", "Cato"]


@dataclass
class Person:
    name: str
    born: int
    died: int
    profession: str
    birthplace: str | None
    work: str
    death_place: str
    founded: list[tuple[str, int]] = field(default_factory=list)
    charted: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Town:
    name: str
    island: str
    population: int
    trade: str
    founded: int
    founder: str
    landmark: str
    festival: str | None = None


@dataclass
class Island:
    name: str
    area: int
    sea: str
    peak: str
    height: int
    capital: str
    charted_by: str
    charted: int
    towns: list[Town] = field(default_factory=list)


@dataclass
class River:
    name: str
    length: int
    source: str
    mouth: str


@dataclass
class Festival:
    name: str
    town: str
    month: str
    occasion: str


@dataclass
class World:
    islands: list[Island]
    people: dict[str, Person]
    rivers: list[River]
    festivals: list[Festival]
    unused_names: list[str]


class _Names:
    """Unique invented names (no name is a prefix-free twin of another by accident)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def word(self, syllables: int) -> str:
        """A word of ``syllables`` syllables: only the first may start with a cluster and
        only the last may end in a consonant."""
        while True:
            parts = [self.rng.choice(_ONSETS) + self.rng.choice(_VOWELS)]
            for _ in range(syllables - 1):
                parts.append(self.rng.choice(_SIMPLE_ONSETS) + self.rng.choice(_VOWELS[:5]))
            parts.append(self.rng.choice(_CODAS))
            word = "".join(parts).capitalize()
            if 4 <= len(word) <= 10 and word.lower() not in self.used:
                self.used.add(word.lower())
                return word

    def town(self) -> str:
        while True:
            name = self.word(1) + self.rng.choice(_TOWN_ENDS)
            if name.lower() not in self.used:
                self.used.add(name.lower())
                return name

    def twin(self, name: str) -> str | None:
        """A name one letter away from ``name`` (another vowel), if one is free."""
        for index, char in enumerate(name):
            if index and char in "aeiou":
                for vowel in "aeiou":
                    candidate = name[:index] + vowel + name[index + 1 :]
                    if vowel != char and candidate.lower() not in self.used:
                        self.used.add(candidate.lower())
                        return candidate
        return None

    def person(self) -> str:
        while True:
            name = f"{self.rng.choice(_FIRST_NAMES)} {self.word(self.rng.choice([1, 2]))}"
            if name.lower() not in self.used:
                self.used.add(name.lower())
                return name


def build_world(seed: int = SEED) -> World:
    """Draw every entity and fact."""
    rng = random.Random(seed)
    names = _Names(rng)
    people: dict[str, Person] = {}
    islands: list[Island] = []
    all_towns: list[Town] = []
    twins: list[str] = []

    def new_person(born: int, profession: str | None = None) -> Person:
        person = Person(
            name=names.person(),
            born=born,
            died=born + rng.randint(38, 86),
            profession=profession or rng.choice(_PROFESSIONS),
            birthplace=None,
            work=f"the {rng.choice(_ADJECTIVES)} {rng.choice(_WORKS)}",
            death_place="",
        )
        people[person.name] = person
        return person

    island_names = [names.word(rng.choice([2, 3])) for _ in range(10)]
    for index, island_name in enumerate(island_names):
        towns = []
        for _ in range(6):
            if twins and rng.random() < 0.2:
                name = names.twin(twins.pop())
                if name is None:
                    name = names.town()
            else:
                name = names.town()
                if rng.random() < 0.3:
                    twins.append(name)
            founded = rng.randint(1400, 1800)
            founder = new_person(founded - rng.randint(24, 50))
            founder.founded.append((name, founded))
            town = Town(
                name=name,
                island=island_name,
                population=rng.randint(8, 600) * 100,
                trade=rng.choice(_TRADES),
                founded=founded,
                founder=founder.name,
                landmark=f"the {rng.choice(_ADJECTIVES)} {rng.choice(_THINGS)}",
            )
            towns.append(town)
        all_towns.extend(towns)
        charted = min(t.founded for t in towns) - rng.randint(5, 60)
        cartographer = new_person(charted - rng.randint(25, 45), "cartographer")
        cartographer.charted.append((island_name, charted))
        islands.append(
            Island(
                name=island_name,
                area=rng.randint(40, 900),
                sea=_SEAS[index % len(_SEAS)],
                peak=f"Mount {names.word(2)}",
                height=rng.randint(300, 2400),
                capital=rng.choice(towns).name,
                charted_by=cartographer.name,
                charted=charted,
                towns=towns,
            )
        )
    for person in people.values():
        older = [t for t in all_towns if t.founded <= person.born - 10]
        person.birthplace = rng.choice(older).name if older else None
        standing = [t for t in all_towns if t.founded <= person.died]
        person.death_place = rng.choice(standing).name if standing else "at sea"

    peaks = [island.peak for island in islands]
    rivers = []
    for _ in range(14):
        rivers.append(
            River(
                name=f"{names.word(1)} River",
                length=rng.randint(12, 340),
                source=rng.choice(peaks),
                mouth=rng.choice([*_SEAS, *(t.name for t in all_towns)]),
            )
        )

    festivals = []
    hosts = rng.sample(all_towns, 20)
    used_festivals: set[str] = set()
    for host in hosts:
        while True:
            name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_FESTIVAL_NOUNS)} Festival"
            if name not in used_festivals:
                used_festivals.add(name)
                break
        host.festival = name
        festivals.append(Festival(name, host.name, rng.choice(_MONTHS), rng.choice(_OCCASIONS)))

    unused = [names.town() for _ in range(6)] + [names.person() for _ in range(6)]
    return World(islands, people, rivers, festivals, unused)


# ------------------------------------------------------------------ articles


def _choose(rng: random.Random, *variants: str) -> str:
    return rng.choice(variants)


def _island_article(island: Island, rng: random.Random) -> str:
    return "\n\n".join(
        [
            f"## {island.name}",
            f"{island.name} is an island of about {island.area} square kilometres in "
            f"{island.sea}. "
            + _choose(
                rng,
                f"The highest peak on {island.name} is {island.peak}, at {island.height} metres.",
                f"{island.peak}, {island.height} metres high, is the highest peak on {island.name}.",
            )
            + " "
            + _choose(
                rng,
                f"The capital of {island.name} is {island.capital}.",
                f"{island.capital} is the capital of {island.name}.",
            )
            + f" {island.name} has {len(island.towns)} towns of note.",
            f"### History of {island.name}",
            f"{island.name} was first charted by {island.charted_by} in {island.charted}. "
            f"Settlers reached {island.name} soon after, and its first town was founded in "
            f"{min(t.founded for t in island.towns)}.",
        ]
    )


def _town_article(town: Town, rng: random.Random) -> str:
    overview = (
        _choose(
            rng,
            f"{town.name} is a town on {town.island}, with about {town.population:,} inhabitants.",
            f"{town.name}, a town on the island of {town.island}, has about "
            f"{town.population:,} inhabitants.",
        )
        + " "
        + _choose(
            rng,
            f"The chief trade of {town.name} is {town.trade}.",
            f"{town.name} lives mainly from {town.trade}.",
        )
        + " "
        + _choose(
            rng,
            f"The harbour of {town.name} freezes in hard winters.",
            f"Ferries link {town.name} with the other towns of {town.island}.",
            f"Most houses in {town.name} are built of grey stone.",
        )
    )
    history = _choose(
        rng,
        f"{town.name} was founded in {town.founded} by {town.founder}.",
        f"{town.founder} founded {town.name} in {town.founded}.",
    ) + " " + _choose(
        rng,
        f"{town.name} grew slowly at first, as the harbour silted up every spring.",
        f"For its first century {town.name} was little more than a fishing camp.",
        f"A fire in {town.founded + rng.randint(20, 90)} destroyed half of {town.name}.",
    )
    landmarks = _choose(
        rng,
        f"The best-known landmark of {town.name} is {town.landmark}.",
        f"Visitors to {town.name} come to see {town.landmark}, its best-known landmark.",
    )
    if town.festival is not None:
        landmarks += f" {town.name} is also the home of the {town.festival}."
    return "\n\n".join(
        [
            f"## {town.name}",
            overview,
            f"### History of {town.name}",
            history,
            f"### Landmarks of {town.name}",
            landmarks,
        ]
    )


def _person_article(person: Person, rng: random.Random) -> str:
    if person.birthplace is not None:
        life = _choose(
            rng,
            f"{person.name} ({person.born}{_DASH}{person.died}) was a {person.profession} born in "
            f"{person.birthplace}.",
            f"{person.name} was born in {person.birthplace} in {person.born} and worked as a "
            f"{person.profession}.",
        )
        life += f" {person.name} was born in the year {person.born}."
    else:
        life = (
            f"{person.name} ({person.born}{_DASH}{person.died}) was a {person.profession} born at "
            "sea, before any town of the isles was founded."
        )
    life += f" {person.name} died in {person.died} in {person.death_place}."
    deeds = [
        _choose(
            rng,
            f"{person.name} is best known for {person.work}.",
            f"The best-known work of {person.name} is {person.work}.",
        )
    ]
    deeds.extend(f"In {year}, {person.name} founded {town}." for town, year in person.founded)
    deeds.extend(f"{person.name} charted {island} in {year}." for island, year in person.charted)
    return "\n\n".join(
        [f"## {person.name}", life, f"### Work of {person.name}", " ".join(deeds)]
    )


def _river_article(river: River, rng: random.Random) -> str:
    return "\n\n".join(
        [
            f"## {river.name}",
            _choose(
                rng,
                f"The {river.name} is {river.length} km long.",
                f"The {river.name} runs for {river.length} km.",
            )
            + f" The {river.name} rises on {river.source} and flows into {river.mouth}.",
        ]
    )


def corpus_files(world: World, seed: int = SEED) -> dict[str, str]:
    """The corpus as ``{relative path: content}``."""
    rng = random.Random(seed + 1)
    files: dict[str, str] = {}
    files["islands.md"] = "\n\n".join(
        [
            "# Islands of the Vantic Isles",
            "The Vantic Isles are an archipelago of ten inhabited islands.",
            *(_island_article(island, rng) for island in world.islands),
        ]
    ) + "\n"
    for island in world.islands:
        files[f"towns/{island.name.lower()}.md"] = "\n\n".join(
            [f"# Towns of {island.name}", *(_town_article(town, rng) for town in island.towns)]
        ) + "\n"
    files["people.md"] = "\n\n".join(
        [
            "# People of the Vantic Isles",
            *(_person_article(person, rng) for person in sorted(world.people.values(),
                                                                 key=lambda p: p.name)),
        ]
    ) + "\n"
    files["rivers.md"] = "\n\n".join(
        ["# Rivers of the Vantic Isles", *(_river_article(river, rng) for river in world.rivers)]
    ) + "\n"
    lines = []
    for number, festival in enumerate(world.festivals):
        text = (
            f"The {festival.name} is held in {festival.town} every {festival.month}. "
            f"The {festival.name} celebrates {festival.occasion}."
        )
        row = {"id": f"festival-{number}", "text": text, "title": festival.name, "kind": "festival"}
        lines.append(json.dumps(row, ensure_ascii=False))
    files["festivals.jsonl"] = "\n".join(lines) + "\n"
    return files


# ------------------------------------------------------------------ questions


def questions(world: World, seed: int = SEED) -> list[dict[str, str]]:
    """Questions with gold answers (one or two facts per entity, plus unanswerable ones)."""
    rng = random.Random(seed + 2)
    asked: list[tuple[str, str, str]] = []  # (entity, question, answer)

    def some(entity: str, options: list[tuple[str, str]], count: int) -> None:
        for question, answer in rng.sample(options, min(count, len(options))):
            asked.append((entity, question, answer))

    for island in world.islands:
        some(island.name, [
            (f"What is the highest peak on {island.name}?", island.peak),
            (f"Which town is the capital of {island.name}?", island.capital),
            (f"Who first charted {island.name}?", island.charted_by),
        ], 2)
        for town in island.towns:
            some(town.name, [
                (f"In which year was {town.name} founded?", str(town.founded)),
                (f"Who founded {town.name}?", town.founder),
                (f"On which island is {town.name}?", town.island),
                (f"What is the chief trade of {town.name}?", town.trade),
                (f"How many people live in {town.name}?", f"{town.population:,}"),
                (f"What is the best-known landmark of {town.name}?", town.landmark),
            ], 2)
    for person in sorted(world.people.values(), key=lambda p: p.name):
        options = [
            (f"In which year was {person.name} born?", str(person.born)),
            (f"What was the profession of {person.name}?", person.profession),
            (f"What is {person.name} best known for?", person.work),
        ]
        if person.birthplace is not None:
            options.append((f"In which town was {person.name} born?", person.birthplace))
        some(person.name, options, 1)
    for river in world.rivers:
        some(river.name, [
            (f"How long is the {river.name}?", f"{river.length} km"),
            (f"Where does the {river.name} rise?", river.source),
        ], 1)
    for festival in world.festivals:
        some(festival.name, [
            (f"In which month is the {festival.name} held?", festival.month),
            (f"In which town is the {festival.name} held?", festival.town),
        ], 1)
    for name in world.unused_names:
        if " " in name:
            asked.append((name, f"In which year was {name} born?", ABSTAIN))
        else:
            asked.append((name, f"In which year was {name} founded?", ABSTAIN))
    rng.shuffle(asked)
    return [
        {
            "id": f"q{number:03d}",
            "question": question,
            "answer": answer,
            "entity": entity,
            "split": "train" if number % 4 == 0 else "dev",
        }
        for number, (entity, question, answer) in enumerate(asked)
    ]


def outputs(seed: int = SEED) -> dict[str, str]:
    """Every file the script writes, as ``{path relative to examples/rag: content}``."""
    world = build_world(seed)
    files = {f"corpus/{path}": text for path, text in corpus_files(world, seed).items()}
    files["questions.jsonl"] = "".join(
        json.dumps(row, ensure_ascii=False) + "\n" for row in questions(world, seed)
    )
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write into")
    parser.add_argument("--check", action="store_true", help="only compare with the files there")
    args = parser.parse_args(argv)
    stale = []
    for relative, text in sorted(outputs().items()):
        path = args.out / relative
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            continue
        stale.append(relative)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"stale: {', '.join(stale)} (run python -m examples.rag.make_corpus)", file=sys.stderr)
        return 1
    print(f"{'stale' if args.check else 'wrote'}: {len(stale)} file(s) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
