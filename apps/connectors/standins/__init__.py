"""Local stand-ins for social networks' APIs, on 127.0.0.1: the real client
libraries talk to them in tests, benchmarks and demos (each provider's base URL
is a setting). They follow the shapes of the recorded payloads in shared/fixtures."""
