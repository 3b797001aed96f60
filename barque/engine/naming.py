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

# Docker's shape of a generated name, "adjective_surname" (e.g. curious_noether), from word
# lists of Barque's own: users and scripts rely on the shape, never on the words.
_ADJECTIVES = (
    "able", "agile", "airy", "amber", "ample", "ardent", "arty", "astute", "balmy", "bashful",
    "bouncy", "brisk", "bright", "buoyant", "calm", "candid", "careful", "cheery", "chipper",
    "civil", "cosmic", "cozy", "crisp", "curious", "daring", "deft", "devoted", "dapper",
    "diligent", "earnest", "easy", "electric", "exact", "fabled", "fair", "fearless", "fluent",
    "fond", "frank", "gentle", "genial", "glad", "golden", "graceful", "handy", "hardy", "hearty",
    "honest", "humble", "jaunty", "joyful", "jubilant", "just", "keen", "lively", "loyal",
    "lucky", "mellow", "merry", "mighty", "mindful", "nimble", "noble", "patient", "placid",
    "plucky", "polite", "proud", "prudent", "quick", "quiet", "radiant", "rapid", "ready",
    "regal", "robust", "rosy", "rustic", "savvy", "sincere", "smart", "snappy", "spirited",
    "spry", "steady", "sturdy", "sunny", "swift", "tidy", "timely", "tranquil", "trusty",
    "upright", "valiant", "vivid", "warm", "wise", "witty", "zesty",
)  # fmt: skip
_SURNAMES = (
    "abel", "ada", "alvarez", "ampere", "anning", "babbage", "backus", "banneker", "bernoulli",
    "blackwell", "boole", "brahe", "cajal", "cantor", "carver", "cauchy", "cavendish", "chadwick",
    "clausius", "copernicus", "coulomb", "crick", "curie", "dalton", "dedekind", "descartes",
    "doppler", "dyson", "eratosthenes", "erdos", "faraday", "fibonacci", "fleming", "fourier",
    "franklin", "fresnel", "gauss", "gibbs", "godel", "hamming", "harvey", "hilbert", "hooke",
    "hopper", "huygens", "jacobi", "joule", "kelvin", "kepler", "kirchhoff", "kolmogorov",
    "lagrange", "laplace", "lavoisier", "leibniz", "lorentz", "lovelace", "lyell", "mandelbrot",
    "markov", "maxwell", "meitner", "mendel", "mendeleev", "minkowski", "mobius", "napier",
    "noether", "ohm", "pascal", "pauli", "pauling", "planck", "poisson", "riemann", "rutherford",
    "sagan", "salk", "schrodinger", "shannon", "somerville", "stokes", "tesla", "thomson",
    "turing", "volta", "wallace", "watt", "weierstrass", "yukawa", "zuse",
)  # fmt: skip


def new_id() -> str:
    """64 hex digits whose 12-digit short form is not all digits (it becomes the hostname,
    which must not look like a number), as moby makes them."""
    while True:
        container_id = os.urandom(32).hex()  # what secrets.token_hex does, minus its imports
        if not container_id[:12].isdigit():
            return container_id


def random_name(retry: int = 0) -> str:
    """adjective_surname as Docker's generated names, with a digit appended on retries."""
    name = f"{_choice(_ADJECTIVES)}_{_choice(_SURNAMES)}"
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
    try:  # dockerd checks the name with its "/", and says what it was doing
        name = check_name("/" + new_name.lstrip("/"))
    except ValueError as e:
        raise EngineError(f"Error when allocating new name: {e}", 1, 400) from None
    if name == record.name:
        raise EngineError("Renaming a container with the same name as its current name", 1)
    engine.records.rename(record.id, name)
    from barque.engine import events

    old, record.name = record.name, name
    events.container(engine, record, "rename", oldName="/" + old)
