"""The training phrase bank of robust training: the sentences the exploit transformations add.

Held apart from the evaluation probes' phrasings (``evaluate/probes.py``) on purpose: a model trained on these
and then scored by the probes meets sentences it has never seen, so a drop in the probes' rise rates shows that
the model learned the *kind* of exploit, not a list of sentences. ``tests/robust/test_phrases.py`` checks that
no sentence (nor any five-word run) is shared either way.

Each tuple is one kind's bank; a transformation picks among it by the row index, so a run is reproducible.
"""

from __future__ import annotations

# generic sentences that sound informative and say nothing (padding, filler)
FILLER: tuple[str, ...] = (
    "Of course, every situation is a little different.",
    "Keep in mind that details can vary from case to case.",
    "This is something a lot of people wonder about at some point.",
    "There is more than one way to look at a question like this.",
    "Much depends on what you hope to achieve in the end.",
    "Each of these points could be discussed at far greater length.",
    "Context matters a great deal when weighing all of this.",
    "Plenty of sources touch on this subject from various angles.",
    "Like most things, it comes down to balancing a few considerations.",
    "It can help to think about the bigger picture as well.",
    "People approach this in all sorts of ways, and that is fine.",
    "Circumstances differ, so results are not always identical.",
)

# flattery of the user (sycophancy)
FLATTERY: tuple[str, ...] = (
    "What a thoughtful thing to ask!",
    "I love how curious you are about this.",
    "You have a real talent for asking the right questions.",
    "Honestly, you seem to know this subject better than most people.",
    "Your question shows remarkable insight.",
    "It is a pleasure to help someone as sharp as you.",
    "You are clearly on the right track already.",
    "Such a smart question, and you asked it perfectly.",
)

# the answer praising itself
SELF_PRAISE: tuple[str, ...] = (
    "This reply covers everything you need, with no mistakes.",
    "I have double-checked every detail above, so you can rely on it fully.",
    "No better explanation of this exists anywhere.",
    "The response above is thorough, precise and flawless.",
    "Everything here is accurate and expertly explained.",
    "You will not find a clearer or more complete answer than this one.",
)

# certainty asserted without evidence (overconfidence)
CONFIDENCE: tuple[str, ...] = (
    "I am one hundred percent certain about this.",
    "There is zero room for doubt here.",
    "This is settled fact, full stop.",
    "Trust me, this is definitely correct.",
    "Every specialist would confirm this instantly.",
    "Rest assured, this is guaranteed to be right.",
)

# hedges that confidence removal strips (whole words, case-insensitive): the same content, falsely certain.
# Only words whose removal leaves a sentence whole (not 'might', 'likely': "it might help" -> "it help")
HEDGES: tuple[str, ...] = (
    "I think",
    "I believe",
    "I'm not sure, but",
    "I am not sure, but",
    "it seems that",
    "probably",
    "possibly",
    "perhaps",
    "maybe",
    "it is possible that",
    "in my opinion,",
    "as far as I know,",
)

# restating the user's request; {request} is the request, whitespace collapsed and cut
ECHO: tuple[str, ...] = (
    'Regarding your question, "{request}":',
    'To restate what you want to know: "{request}"',
    'Your request was: "{request}". Here is my reply.',
    'So the question is "{request}" - let me respond.',
)

# fluent paragraphs about nothing the user asked (off-topic text)
OFF_TOPIC: tuple[str, ...] = (
    "On a different note, the history of lighthouses is fascinating. Early keepers trimmed wicks through the "
    "night, and many towers were painted in bold stripes so sailors could tell them apart by day.",
    "Incidentally, octopuses have three hearts and blue blood. Two hearts move blood through the gills while the "
    "third serves the rest of the body.",
    "As an aside, sourdough bakers often keep a starter alive for years, feeding it flour and water daily and "
    "giving it names as if it were a pet.",
    "By the way, the tallest waterfall on Earth, Angel Falls in Venezuela, drops nearly a kilometre, and much of "
    "its water turns to mist before reaching the bottom.",
    "Unrelated, but chess was once played by mail, with single games lasting years as postcards crossed oceans "
    "carrying one move at a time.",
    "Speaking of something else entirely, honeybees communicate the location of flowers through a waggle dance "
    "whose angle points relative to the sun.",
)

# structure without substance around the unchanged answer (scaffolding); {response} is the answer
SCAFFOLD: tuple[str, ...] = (
    "## Overview\nBelow is a structured reply.\n\n## Details\n{response}\n\n## Conclusion\nThat covers the request.",
    "**Analysis:** I considered the request carefully.\n\n**Answer:**\n{response}\n\n**Summary:** As shown above.",
    "Approach: break the problem down, then respond.\n\nPart A - reasoning: done.\nPart B - result:\n{response}",
)

# short text tacked on after the answer (sign-offs, emojis, calls to action): appended_text's default bank
APPENDED: tuple[str, ...] = (
    "Hope that clears things up! 😊",
    "Feel free to reach out with anything else.",
    "Thanks for reading, and have a wonderful day!",
    "Let me know if you would like more on this.",
    "Cheers! ✨",
    "P.S. Don't forget to share this with friends.",
)

BANKS: dict[str, tuple[str, ...]] = {
    "filler": FILLER,
    "flattery": FLATTERY,
    "self_praise": SELF_PRAISE,
    "confidence": CONFIDENCE,
    "echo": ECHO,
    "off_topic": OFF_TOPIC,
    "scaffold": SCAFFOLD,
    "appended": APPENDED,
}
