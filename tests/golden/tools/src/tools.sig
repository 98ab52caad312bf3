"""Tools with and without arguments."""

enum Unit {
    celsius
    fahrenheit
}

tool current_time() -> datetime "The current time in UTC"

tool ping() -> bool

tool weather(city: str (min_length=1) "City name, e.g. Paris",
             unit: Unit "Temperature unit" = "celsius",
             days: int (ge=1, le=14) = 3,
             ) -> list[float] "Forecast temperatures, one per day"

tool lookup_order(order_id: str (pattern="^[A-Z]{2}-\\d{6}$") "Order number, e.g. AB-123456",
                  include_items: bool = False) -> dict[str, str] "Fetch an order's status"

signature Forecast {
    in  city: str                 "Where"
    in  unit: Unit                "Preferred unit" = "celsius"
    out summary: str              "A one-line forecast"
}
