import pytest

from scitune.eval.answers import letter, letter_index, parse_answer


@pytest.mark.parametrize(
    "text, options, expected",
    [
        ("B", 4, 1),
        (" b ", 4, None),  # lower case is not a letter answer
        ("(C)", 4, 2),
        ("D.", 4, 3),
        ("A. hyperbole", 2, 0),
        ("LECTURE: ... SOLUTION: ...\n The answer is B.", 3, 1),
        ("The answer is A. BECAUSE: ...", 2, 0),
        ("ANSWER: C", 3, 2),
        ("Reasoning first.\nAnswer: (B)", 3, 1),
        ("The answer is D.", 2, None),  # names an option the problem lacks
        ("The answer is A. Wait, the answer is C.", 3, 0),  # case-sensitive "The answer is"
        ("The answer is A. Sorry. The answer is C.", 3, None),  # two different letters: ambiguous
        ("The answer is B. As said, The answer is B.", 3, 1),  # repeated, same letter
        ("I cannot tell.", 4, None),
        ("", 4, None),
    ],
)
def test_parse_answer(text, options, expected):
    assert parse_answer(text, options) == expected


def test_parse_answer_is_deterministic_on_failure():
    results = {parse_answer("no letter here", 4) for _ in range(20)}
    assert results == {None}


def test_letters_round_trip():
    assert [letter(i) for i in range(5)] == list("ABCDE")
    assert letter_index("C") == 2
    with pytest.raises(ValueError):
        letter_index("c")
