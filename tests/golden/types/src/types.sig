"""Every kind of type a signature can use."""

enum Color {
    red
    green
    blue
}

signature Measure {
    """Measure things in a picture."""
    in  photo: Image                                   "The picture"
    in  thumbnail: Image | None                        "A smaller copy" = None
    in  taken_on: date                                 "When it was taken"
    in  uploaded_at: datetime                          "When it was uploaded"
    in  hints: list[str] | None                        "Optional hints" = None
    out point: tuple[float, float]                     "x and y of the main object"
    out box: tuple[int, int, int, int]                 "Bounding box"
    out readings: tuple[float, ...]                    "Any number of readings"
    out counts: dict[int, str]                         "Label per count"
    out per_color: dict[Color, int]                    "Objects per color"
    out tree: dict[str, list[dict[str, tuple[int, str] | None]]] "Nested generics"
    out grid: list[list[float]]                        "A matrix"
    out mode: Literal["fast", "slow"]                  "Which mode"
    out level: Literal[1, 2, 3]                        "A level"
    out flag: Literal[True, False]                     "A bool literal"
    out mixed: Literal["auto", 0, False] | None        "Mixed literal, optional"
    out number: int | float | str                      "A union"
    out due: date | None                               "A date, if any"
    out seen_at: datetime                              "A timestamp"
}

predictor Measurer = predict(Measure)
