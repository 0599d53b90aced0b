"""Work that runs on a schedule or in the background, apart from requests."""
