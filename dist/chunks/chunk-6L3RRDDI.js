import{createRequire as __pipelineCreateRequire}from'node:module';const require=__pipelineCreateRequire(import.meta.url);
var e=["error","failure","inactive","in_progress","queued","pending","success"];export{e as a};
