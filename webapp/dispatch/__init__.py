"""Building, signing and sending webhooks, and recording what happened to them."""
