"""Each page's pure logic (named like its page in explorer/views) and the maths pages share. No Streamlit here."""
