"""Declarations with long names, imported with a long import line."""

enum ExtremelyDetailedClassificationCategoryForIncomingRequests {
    first_category_with_a_rather_long_member_name_to_stretch_lines = "first category value text that is long"
    second
}

class AVeryLongClassNameThatDescribesTheStructuredResultOfAnAnalysis {
    """A docstring that is long enough to go past the line length limit of black, which is eighty-eight characters."""
    an_attribute_name_that_is_long_enough_to_matter: list[dict[str, list[tuple[int, float, str]]]] "A description that is also quite long so that the field call must be split over lines"
    category: ExtremelyDetailedClassificationCategoryForIncomingRequests = "second"
}

signature AnotherSignatureWithAnExtraordinarilyLongNameForTesting {
    in  q: str
    out a: str "A"
}
