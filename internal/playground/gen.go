package playground

// assets/app.js is bundled from src/ and the npm packages package-lock.json
// pins (run `npm ci` here first; `make playground` does both).
//go:generate go run ./build -src src/main.js -out assets/app.js
