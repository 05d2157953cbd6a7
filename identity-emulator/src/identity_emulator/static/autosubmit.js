// response_mode=form_post: carry the code back in a POST body, so it never sits in a URL or Referer.
document.getElementById("form_post").submit();
