"""Container IDs and names as Docker makes and checks them."""

from __future__ import annotations

import os
import re

TYPE_CHECKING = False  # not typing's: importing typing costs every command ~2.5 ms
if TYPE_CHECKING:
    from barque.engine.context import Engine

# Docker's container name rule (daemon/names): a leading alphanumeric, then [a-zA-Z0-9_.-].
# A pattern, compiled on first use (re caches it), not by every command at import.
NAME_RE = r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+\Z"

# From moby's pkg/namesgenerator (a subset of its lists): "adjective_surname".
_ADJECTIVES = (
    "admiring", "adoring", "affectionate", "agitated", "amazing", "angry", "awesome",
    "beautiful", "blissful", "bold", "brave", "busy", "charming", "clever", "compassionate",
    "competent", "condescending", "confident", "cool", "cranky", "crazy", "dazzling",
    "determined", "distracted", "dreamy", "eager", "ecstatic", "elastic", "elated", "elegant",
    "eloquent", "epic", "exciting", "fervent", "festive", "flamboyant", "focused", "friendly",
    "frosty", "funny", "gallant", "gifted", "goofy", "gracious", "great", "happy", "hardcore",
    "heuristic", "hopeful", "hungry", "infallible", "inspiring", "intelligent", "interesting",
    "jolly", "jovial", "keen", "kind", "laughing", "loving", "lucid", "magical", "modest",
    "musing", "mystifying", "naughty", "nervous", "nice", "nifty", "nostalgic", "objective",
    "optimistic", "peaceful", "pedantic", "pensive", "practical", "priceless", "quirky",
    "quizzical", "recursing", "relaxed", "reverent", "romantic", "sad", "serene", "sharp",
    "silly", "sleepy", "stoic", "strange", "stupefied", "suspicious", "sweet", "tender",
    "thirsty", "trusting", "unruffled", "upbeat", "vibrant", "vigilant", "vigorous",
    "wizardly", "wonderful", "xenodochial", "youthful", "zealous", "zen",
)  # fmt: skip
_SURNAMES = (
    "agnesi", "albattani", "allen", "almeida", "antonelli", "archimedes", "ardinghelli",
    "aryabhata", "austin", "babbage", "banach", "bardeen", "bartik", "bassi", "beaver", "bell",
    "benz", "bhabha", "bhaskara", "blackburn", "blackwell", "bohr", "booth", "borg", "bose",
    "boyd", "brahmagupta", "brattain", "brown", "buck", "burnell", "cannon", "carson", "cartwright",
    "cerf", "chandrasekhar", "chaplygin", "chatelet", "chatterjee", "chebyshev", "cohen",
    "chaum", "clarke", "colden", "cori", "cray", "curie", "darwin", "davinci", "dewdney", "dhawan",
    "diffie", "dijkstra", "dirac", "driscoll", "dubinsky", "easley", "edison", "einstein",
    "elbakyan", "elgamal", "elion", "ellis", "engelbart", "euclid", "euler", "faraday", "feistel",
    "fermat", "fermi", "feynman", "franklin", "gagarin", "galileo", "galois", "ganguly", "gates",
    "gauss", "germain", "goldberg", "goldstine", "goldwasser", "golick", "goodall", "gould",
    "greider", "grothendieck", "haibt", "hamilton", "haslett", "hawking", "heisenberg",
    "hellman", "hermann", "herschel", "hertz", "heyrovsky", "hodgkin", "hofstadter", "hoover",
    "hopper", "hugle", "hypatia", "ishizaka", "jackson", "jang", "jemison", "jennings", "jepsen",
    "johnson", "joliot", "jones", "kalam", "kapitsa", "kare", "keldysh", "keller", "kepler",
    "khayyam", "khorana", "kilby", "kirch", "knuth", "kowalevski", "lalande", "lamarr",
    "lamport", "leakey", "leavitt", "lederberg", "lehmann", "lewin", "lichterman", "liskov",
    "lovelace", "lumiere", "mahavira", "margulis", "matsumoto", "maxwell", "mayer", "mccarthy",
    "mcclintock", "mclaren", "mclean", "mcnulty", "meitner", "mendel", "mendeleev", "meninsky",
    "merkle", "mestorf", "mirzakhani", "montalcini", "moore", "morse", "moser", "murdock",
    "napier", "nash", "neumann", "newton", "nightingale", "nobel", "noether", "northcutt",
    "noyce", "panini", "pare", "pascal", "pasteur", "payne", "perlman", "pike", "poincare",
    "poitras", "proskuriakova", "ptolemy", "raman", "ramanujan", "rhodes", "ride", "ritchie",
    "robinson", "roentgen", "rosalind", "rubin", "saha", "sammet", "sanderson", "satoshi",
    "shamir", "shannon", "shaw", "shirley", "shockley", "shtern", "sinoussi", "snyder",
    "solomon", "spence", "stonebraker", "sutherland", "swanson", "swartz", "swirles", "taussig",
    "tesla", "tharp", "thompson", "torvalds", "tu", "turing", "varahamihira", "vaughan",
    "villani", "visvesvaraya", "volhard", "wescoff", "wilbur", "wiles", "williams",
    "williamson", "wilson", "wing", "wozniak", "wright", "wu", "yalow", "yonath", "zhukovsky",
)  # fmt: skip


def new_id() -> str:
    """64 hex digits whose 12-digit short form is not all digits (it becomes the hostname,
    which must not look like a number), as moby makes them."""
    while True:
        container_id = os.urandom(32).hex()  # what secrets.token_hex does, minus its imports
        if not container_id[:12].isdigit():
            return container_id


def random_name(retry: int = 0) -> str:
    """moby's GetRandomName: adjective_surname, with a digit appended on retries."""
    while True:
        name = f"{_choice(_ADJECTIVES)}_{_choice(_SURNAMES)}"
        if name != "boring_wozniak":  # Steve Wozniak is not boring (moby's own rule)
            break
    return f"{name}{_below(10)}" if retry else name


def _below(n: int) -> int:
    """A uniform random integer in [0, n) from the OS's generator (secrets.randbelow)."""
    limit = (1 << 32) // n * n
    while True:
        value = int.from_bytes(os.urandom(4), "little")
        if value < limit:
            return value % n


def _choice(items: tuple[str, ...]) -> str:
    return items[_below(len(items))]


def check_name(name: str) -> str:
    """The name without its leading "/", or ValueError in Docker's words."""
    if not re.match(NAME_RE, name):
        raise ValueError(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    return name.lstrip("/")


def rename(engine: Engine, ref: str, new_name: str) -> None:
    """`docker rename` (POST /containers/{id}/rename)."""
    from barque.engine.errors import EngineError

    record = engine.find(ref)
    try:
        name = check_name(new_name)
    except ValueError as e:
        raise EngineError(str(e), 1, 400) from None
    if name == record.name:
        raise EngineError("Renaming a container with the same name as its current name", 1)
    engine.records.rename(record.id, name)
    from barque.engine import events

    old, record.name = record.name, name
    events.container(engine, record, "rename", oldName="/" + old)
