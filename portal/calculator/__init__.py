"""The price calculator: public pricing, quote requests, and the price catalogue staff edit."""
