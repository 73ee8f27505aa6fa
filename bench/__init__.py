"""`make bench`: the service in production shape under load, and Isso beside it for scale."""
