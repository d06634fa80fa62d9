// Continuous camera scanning: frames go to the server, which reads QR codes with zxing-cpp,
// so it works the same on Android Chrome and on iPhone Safari (which has no BarcodeDetector).
//
// One implementation for every page with a camera (templates/scan/_camera.html). Each code read
// for the first time beeps and is announced on the camera's element as a "camera-code" event (its
// detail: the server's result, with at least the code); a page may take it from there (the set
// check-in page queues it to check in). A "camera-forget" event (detail: the code) lets a code be
// read again: one that did not get through, say. With a list (the camera page), each result is shown.
(() => {
  const root = document.getElementById("camera-scan");
  if (!root) return;
  root.hidden = false; // the page hides the camera from browsers without JavaScript
  const video = document.getElementById("camera-video");
  const view = document.getElementById("camera-view");
  const status = document.getElementById("camera-status");
  const list = document.getElementById("camera-list");
  const count = document.getElementById("camera-count");
  const startButton = document.getElementById("camera-start");
  const stopButton = document.getElementById("camera-stop");
  const clearButton = document.getElementById("camera-clear");
  const canvas = document.createElement("canvas");
  const seen = new Set();
  const FRAME_WIDTH = 960;
  let stream = null;
  let running = false;
  let audio = null;

  const say = (text) => { status.textContent = text; };
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function beep(ok) {
    if (navigator.vibrate) navigator.vibrate(ok ? 80 : [60, 60, 60]);
    if (!audio) return;
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.frequency.value = ok ? 1320 : 330;
    gain.gain.value = 0.15;
    tone.connect(gain).connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + (ok ? 0.09 : 0.3));
  }

  function show(result) {
    const item = document.createElement("li");
    if (result.found) {
      const link = document.createElement("a");
      link.href = result.url;
      link.className = "tag";
      link.textContent = result.tag;
      item.append(link, ` ${result.description} · ${result.status}`);
      item.className = "found";
      say(`${result.tag} ${result.description}: recognised.`);
    } else {
      item.textContent = result.message;
      item.className = "unknown";
      say(result.message);
    }
    item.dataset.code = result.code;
    list.prepend(item);
    count.textContent = String(list.children.length);
  }

  async function sendFrame() {
    if (video.readyState < 2 || !video.videoWidth) return;
    const scale = Math.min(1, FRAME_WIDTH / video.videoWidth);
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.8));
    if (!blob) return;
    const response = await fetch(root.dataset.frameUrl, {
      method: "POST", body: blob, credentials: "same-origin",
      headers: { "Content-Type": "image/jpeg", "X-CSRFToken": root.dataset.csrf },
    });
    if (response.redirected || response.status === 401 || response.status === 403) {
      say("You have been signed out. Sign in again, then restart the camera.");
      stop();
      return;
    }
    if (!response.ok) return;
    const { results } = await response.json();
    for (const result of results || []) {
      // Ignore repeats: the same label stays in view for many frames.
      if (!running || seen.has(result.code)) continue;
      seen.add(result.code);
      beep(result.found !== false);
      if (list) show(result);
      root.dispatchEvent(new CustomEvent("camera-code", { detail: result }));
    }
  }

  async function loop() {
    while (running) {
      try {
        await sendFrame();
      } catch (error) {
        say("Lost the connection to the server; still trying…");
        await sleep(1000);
      }
      await sleep(120);
    }
  }

  async function start() {
    if (running) return;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      say("This browser cannot use the camera here (the page must be opened over https).");
      return;
    }
    const Audio = window.AudioContext || window.webkitAudioContext;
    if (Audio && !audio) audio = new Audio();  // created on a tap, so iPhones allow the beep
    startButton.disabled = true;  // one camera, however quickly Start is tapped again
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: false, video: { facingMode: { ideal: "environment" }, width: { ideal: 1280 }, height: { ideal: 720 } },
      });
    } catch (error) {
      say(`The camera could not be opened (${error.name}). Allow camera access for this site and try again.`);
      startButton.disabled = false;
      return;
    }
    video.srcObject = stream;
    if (view) view.hidden = false;
    await video.play().catch(() => {});
    running = true;
    startButton.hidden = true;
    startButton.disabled = false;
    stopButton.hidden = false;
    if (clearButton) clearButton.hidden = false;
    say("Scanning. Hold a label in view.");
    loop();
  }

  function stop() {
    running = false;
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
    if (view) view.hidden = true;
    startButton.hidden = false;
    stopButton.hidden = true;
  }

  startButton.addEventListener("click", start);
  stopButton.addEventListener("click", () => { stop(); say("The camera is off."); });
  clearButton?.addEventListener("click", () => { seen.clear(); list.replaceChildren(); count.textContent = "0"; });
  root.addEventListener("camera-forget", (event) => seen.delete(event.detail));
})();
