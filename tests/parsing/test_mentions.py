import pytest

from threadloom.parsing._mentions import choose, fold, literal_names

NAMES = {"ONE": ["ONE"], "TWO": ["TWO"], "THREE": ["THREE"]}


def test_fold_drops_accents_punctuation_and_case() -> None:
    assert fold("Café-Crème_2.0") == "cafe creme 2 0"
    assert fold("Café", case=True) == "Cafe"


@pytest.mark.parametrize(
    ("text", "chosen"),
    [
        ("The answer is **two**", "TWO"),
        ('"TWO" is one of the answers', "TWO"),  # the case-sensitive count decides
        ("one, then one again, then two", "ONE"),  # the most mentions win
        ("nothing relevant", None),
        ("ONE or TWO", None),  # a tie is no answer
    ],
)
def test_choose(text: str, chosen: str | None) -> None:
    assert choose(text, NAMES) == chosen


def test_a_longer_name_hides_the_shorter_inside_it() -> None:
    names = {"car": ["car"], "car-2": ["car-2"]}
    assert choose("I pick car-2", names) == "car-2"
    assert choose("not car or car-2", names) is None


def test_aliases_replace_names() -> None:
    names = literal_names(["ONE", "TWO", 3], {"ONE": "k1"})
    assert names == {"ONE": ["k1"], "TWO": ["TWO"]}
    assert choose("k1 is best", names) == "ONE"
