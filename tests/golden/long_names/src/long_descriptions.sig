"""Long names and long descriptions, to exercise the line layout."""

from very_long_shared_module_name_for_layout import AVeryLongClassNameThatDescribesTheStructuredResultOfAnAnalysis, ExtremelyDetailedClassificationCategoryForIncomingRequests, AnotherSignatureWithAnExtraordinarilyLongNameForTesting

signature SummarizeTheIncomingCustomerSupportConversationIntoAStructuredRecord {
    """
    This instruction line is deliberately longer than eighty-eight characters so that the generated string must stay long.
    Short line.

    A paragraph after a blank line, with "quotes" and a trailing colon:
    """
    in  the_full_conversation_transcript_between_customer_and_agent: str "The whole conversation between the customer and the support agent, verbatim, including greetings and signatures"
    in  x: str "Short"
    in  optional_previous_analysis_of_the_same_customer: AVeryLongClassNameThatDescribesTheStructuredResultOfAnAnalysis | None "An earlier analysis, if any" = None
    in  c: ExtremelyDetailedClassificationCategoryForIncomingRequests = "first category value text that is long"
    out analysis_result_with_every_detail_the_downstream_systems_need: AVeryLongClassNameThatDescribesTheStructuredResultOfAnAnalysis "The analysis"
    out very_long_literal_choice: Literal["first possible answer", "second possible answer", "third possible answer", 42, True] "Pick one"
    out d: str (min_length=1, max_length=1000, pattern="^[A-Za-z ]+$", prefix="A prefix that is long enough to push the line over the limit:", format="plain text, no markdown") "d"
}

predictor SummarizeTheConversationWithReasoningUsingTheJsonAdapterPredictor = chain_of_thought(SummarizeTheIncomingCustomerSupportConversationIntoAStructuredRecord, adapter="json")
predictor ShortLongImportedSignaturePredictor = chain_of_thought(AnotherSignatureWithAnExtraordinarilyLongNameForTesting)
