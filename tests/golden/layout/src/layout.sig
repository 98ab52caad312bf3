"""
Module docstring on several lines.

Comments, trailing commas and free layout must not change the generated code.
"""

# A comment before the first declaration.
enum Mood { happy sad "Not happy" neutral }   # members on one line

class Point { x: float y: float }   # fields on one line

signature   Locate   {   # a comment after the brace
    """
        Indented instructions
        on two lines.
    """
    in place: str "Where" # a comment after a field
    in
        hint: str | None
        "A hint"
        = None
    out where: Point "The point"
    out mood: Mood "How it feels" = "neutral"
    out tags: list[str] (min_items=0, max_items=3,) "Tags" = ["a", "b",]
}

predictor L = predict(Locate,)   # trailing comma in the call
# A comment at the end of the file.
