// Ant Design's Input and Input.Password, imported on their own: `Input` from "antd" carries Search, TextArea and OTP
// along as static members (~6 KB gzipped), on the first page anyone loads (budget: 250 KB of gzipped JavaScript).
export { default as Input } from "antd/es/input/Input";
export { default as Password } from "antd/es/input/Password";
